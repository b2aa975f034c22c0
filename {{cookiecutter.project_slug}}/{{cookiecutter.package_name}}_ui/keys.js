// Esc stops the answer from anywhere on the page, handled in the page: no round trip per key.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") document.getElementById("stop")?.click();
});
