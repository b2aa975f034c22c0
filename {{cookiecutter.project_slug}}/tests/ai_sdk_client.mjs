// Reads POST /api/chat exactly as the AI SDK's `useChat` does: DefaultChatTransport sends the
// request and validates every chunk, readUIMessageStream assembles the message.
// Usage: node ai_sdk_client.mjs <package> <api url> <model> [stop-after-first-text]
// Prints {"message": <the last UIMessage>, "errors": [...]} as JSON.
const [pkg, api, model, stopEarly] = process.argv.slice(2);
const { DefaultChatTransport, readUIMessageStream } = await import(pkg);

const controller = new AbortController();
const transport = new DefaultChatTransport({ api, body: { model } });
const errors = [];
const report = (error) => {
  if (!controller.signal.aborted) errors.push(String(error.message ?? error));
};
let message;
try {
  const stream = await transport.sendMessages({
    chatId: "chat-1",
    trigger: "submit-message",
    messageId: undefined,
    messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: "Hello?" }] }],
    abortSignal: controller.signal,
  });
  for await (message of readUIMessageStream({ stream, onError: report })) {
    if (stopEarly && message.parts.some((part) => part.type === "text" && part.text)) {
      controller.abort(); // what useChat's stop() does
    }
  }
} catch (error) {
  report(error);
}
console.log(JSON.stringify({ message, errors }));
