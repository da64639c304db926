// Skylight critical results panel: a one-click copy of the acknowledgement link, which is shown
// only once. Installed once, whatever htmx swaps.
(function () {
  if (window.skylightCritical) return;
  window.skylightCritical = true;
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('[data-copy-link]');
    if (!button) return;
    var field = document.getElementById(button.getAttribute('data-copy-link'));
    if (!field) return;
    field.select();
    var done = function () { button.textContent = 'Copied'; };
    if (navigator.clipboard) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand('copy'); done(); });
    } else {
      document.execCommand('copy');
      done();
    }
  });
})();
