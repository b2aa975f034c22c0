// Reads POST /api/chat exactly as the AI SDK's `useChat` does: DefaultChatTransport sends the
// request and validates every chunk, readUIMessageStream assembles the message.
// Usage: node ai_sdk_client.mjs <package> <api url> <model> [stop|drop|resume|file]
//   stop: abort after the first text, as useChat's stop() does;
//   drop: the same on a resumable request (a reload, a lost network);
//   resume: drop, then re-attach with the transport's own reconnectToStream (useChat's resume);
//   file: the question brings a text file, as a file part with a data: URL (as useChat sends
//   the files given to sendMessage).
// Prints {"message": <the last UIMessage>, "errors": [...]} as JSON.
const [pkg, api, model, mode] = process.argv.slice(2);
const { DefaultChatTransport, readUIMessageStream } = await import(pkg);

const resumable = mode === "drop" || mode === "resume";
const chatId = resumable ? crypto.randomUUID().replaceAll("-", "") : "chat-1";
const transport = new DefaultChatTransport({ api, body: { model, resumable } });
const errors = [];
let message;

async function read(stream, controller) {
  const report = (error) => {
    if (!controller?.signal.aborted) errors.push(String(error.message ?? error));
  };
  try {
    for await (message of readUIMessageStream({ stream: await stream, onError: report })) {
      if (controller && message.parts.some((part) => part.type === "text" && part.text)) {
        controller.abort();
      }
    }
  } catch (error) {
    report(error);
  }
}

const parts = [{ type: "text", text: "Hello?" }];
if (mode === "file") {
  const notes = Buffer.from("The meeting is at noon.\n").toString("base64");
  const url = `data:text/plain;base64,${notes}`;
  parts.push({ type: "file", mediaType: "text/plain", filename: "notes.txt", url });
}
const controller = new AbortController();
await read(
  transport.sendMessages({
    chatId,
    trigger: "submit-message",
    messageId: undefined,
    messages: [{ id: "m1", role: "user", parts }],
    abortSignal: controller.signal,
  }),
  mode && mode !== "file" ? controller : undefined,
);
if (mode === "resume") {
  message = undefined;
  await read(transport.reconnectToStream({ chatId }));
}
console.log(JSON.stringify({ message, errors }));
