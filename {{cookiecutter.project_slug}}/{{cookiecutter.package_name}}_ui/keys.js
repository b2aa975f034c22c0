// Esc stops the answer from anywhere on the page, handled in the page: no round trip per key.
// Not the Esc that closes a drawer, dialog, menu or popover: Radix handles that one first and
// marks it handled.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !event.defaultPrevented) document.getElementById("stop")?.click();
});
