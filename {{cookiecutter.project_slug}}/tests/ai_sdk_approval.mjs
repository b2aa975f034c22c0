// Answers a tool call's approval request as an AI SDK (ai@6 or later) chat does: the Chat sends
// the question, the user approves or denies with addToolApprovalResponse, and
// lastAssistantMessageIsCompleteWithApprovalResponses sends the next request by itself.
// Usage: node ai_sdk_approval.mjs <package> <api url> <model> approve|deny
// Prints {"messages": [...], "errors": [...], "requests": <POSTs sent>} as JSON.
const [pkg, api, model, decision] = process.argv.slice(2);
const {
  AbstractChat,
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
} = await import(pkg);

// `ai` exports only AbstractChat; this is the state a framework binding (@ai-sdk/react's Chat)
// gives it.
class Chat extends AbstractChat {
  constructor(init) {
    const state = {
      status: "ready",
      error: undefined,
      messages: [],
      pushMessage(message) {
        this.messages = this.messages.concat(message);
      },
      popMessage() {
        this.messages = this.messages.slice(0, -1);
      },
      replaceMessage(index, message) {
        this.messages = this.messages.with(index, structuredClone(message));
      },
      snapshot: (value) => structuredClone(value),
    };
    super({ ...init, state });
  }
}

let requests = 0;
const errors = [];
const chat = new Chat({
  transport: new DefaultChatTransport({
    api,
    body: { model },
    fetch: (url, options) => {
      requests += 1;
      return fetch(url, options);
    },
  }),
  sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  onError: (error) => errors.push(String(error.message ?? error)),
});

const settled = async () => {
  for (let tries = 0; tries < 600 && !["ready", "error"].includes(chat.status); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

await chat.sendMessage({ text: "Delete note 1." });
await settled();
const asking = chat.lastMessage.parts.find((part) => part.state === "approval-requested");
if (asking) {
  const approved = decision === "approve";
  await chat.addToolApprovalResponse({ id: asking.approval.id, approved, reason: "keep it" });
  await new Promise((resolve) => setTimeout(resolve, 100)); // the automatic request starts
  await settled();
}
console.log(JSON.stringify({ messages: chat.messages, errors, requests }));
