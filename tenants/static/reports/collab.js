// Skylight collaboration panel: @mention suggestions in comment boxes. Progressive enhancement:
// without it, typing @username works the same. Installed once, whatever htmx swaps.
(function () {
  if (window.skylightCollab) return;
  window.skylightCollab = true;
  var timer = null;

  function wordAtCaret(area) {
    var before = area.value.slice(0, area.selectionStart);
    var match = before.match(/(?:^|\s)@([\w.+-]*)$/);
    return match ? match[1] : null;
  }

  function listFor(area) {
    var list = area.parentNode.querySelector('.mention-list');
    if (!list) {
      list = document.createElement('ul');
      list.className = 'mention-list';
      list.setAttribute('role', 'listbox');
      area.insertAdjacentElement('afterend', list);
    }
    return list;
  }

  function insert(area, username) {
    var caret = area.selectionStart;
    var before = area.value.slice(0, caret).replace(/@[\w.+-]*$/, '@' + username + ' ');
    area.value = before + area.value.slice(caret);
    area.selectionStart = area.selectionEnd = before.length;
    area.dispatchEvent(new Event('input', {bubbles: true}));
    listFor(area).innerHTML = '';
    area.focus();
  }

  document.addEventListener('input', function (event) {
    var area = event.target;
    if (!area.matches || !area.matches('textarea[data-mentions]')) return;
    var prefix = wordAtCaret(area);
    var panel = area.closest('[data-mentionable]');
    var list = listFor(area);
    if (!prefix || !panel) { list.innerHTML = ''; return; }
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(panel.dataset.mentionable + '?q=' + encodeURIComponent(prefix), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {users: []}; })
        .then(function (data) {
          list.innerHTML = '';
          data.users.forEach(function (u) {
            var li = document.createElement('li');
            var button = document.createElement('button');
            button.type = 'button';
            button.textContent = '@' + u.username + (u.name && u.name !== u.username ? ' (' + u.name + ')' : '');
            button.addEventListener('click', function () { insert(area, u.username); });
            li.appendChild(button);
            list.appendChild(li);
          });
        });
    }, 200);
  });
})();
