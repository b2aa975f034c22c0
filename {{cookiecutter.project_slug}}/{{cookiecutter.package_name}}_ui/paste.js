// Files pasted into the question box (a screenshot, say) are attached as if dropped on the
// composer: its drop zone takes them through its own file input.
document.addEventListener("paste", (event) => {
  const files = event.clipboardData?.files;
  const input = document.querySelector(".composer-drop > input[type=file]");
  if (!files?.length || event.target.id !== "question" || !input) return;
  event.preventDefault();
  input.files = files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
});
