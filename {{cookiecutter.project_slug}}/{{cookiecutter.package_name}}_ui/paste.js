// Files pasted into the question box (a screenshot, say) are attached as if dropped on the
// composer: its drop zone takes them through its own file input. A paste that has text too
// (cells from a spreadsheet come with a picture of them) pastes the text.
document.addEventListener("paste", (event) => {
  const clipboard = event.clipboardData;
  const input = document.querySelector(".composer-drop > input[type=file]");
  const files = clipboard?.getData("text/plain") ? null : clipboard?.files;
  if (!files?.length || event.target.id !== "question" || !input) return;
  event.preventDefault();
  input.files = files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
});
