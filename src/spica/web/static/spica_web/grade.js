// Keyboard shortcuts of the grading page: a-d grade, / comment, Enter save and next,
// s save, n / ArrowRight next, p / ArrowLeft previous.
var spicaSubmitting = false;
document.addEventListener("keydown", function (event) {
  if (spicaSubmitting) { event.preventDefault(); return; }
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" && target.type === "text" || target.tagName === "TEXTAREA");
  if (event.key === "Enter" && !event.ctrlKey) {
    event.preventDefault();
    spicaSubmitting = true;
    document.getElementById("save-next").click();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  var key = event.key.toLowerCase();
  if ("abcd".indexOf(key) >= 0 && key.length === 1) {
    var radio = document.querySelector('input[name="grade"][value="' + key.toUpperCase() + '"]');
    if (radio) { radio.checked = true; event.preventDefault(); }
  } else if (event.key === "/") {
    event.preventDefault();
    document.getElementById("id_comment").focus();
  } else if (key === "s") {
    event.preventDefault();
    spicaSubmitting = true;
    document.getElementById("save").click();
  } else if (key === "n" || event.key === "ArrowRight") {
    var next = document.getElementById("next");
    if (next) window.location = next.href;
  } else if (key === "p" || event.key === "ArrowLeft") {
    var prev = document.getElementById("prev");
    if (prev) window.location = prev.href;
  }
});
