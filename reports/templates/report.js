// Sortable tables: click (or Enter on) a header; quality columns sort best-first on the first
// click. Missing values always sink to the bottom. Before printing, open every <details>.
(function () {
  function key(cell) {
    var raw = cell.getAttribute('data-sort');
    if (raw === null || raw === '') { return null; }
    var number = parseFloat(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function sortBy(table, index, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var current = header.getAttribute('aria-sort');
    var descending = current ? current === 'ascending' : header.getAttribute('data-better') === 'higher';
    Array.prototype.forEach.call(table.querySelectorAll('th'), function (th) { th.removeAttribute('aria-sort'); });
    header.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      header.setAttribute('tabindex', '0');
      header.addEventListener('click', function () { sortBy(table, index, header); });
      header.addEventListener('keydown', function (event) {
        if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); sortBy(table, index, header); }
      });
    });
  });
  window.addEventListener('beforeprint', function () {
    Array.prototype.forEach.call(document.querySelectorAll('details'), function (d) { d.open = true; });
  });
})();
