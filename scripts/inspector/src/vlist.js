// A virtualised list: rows of one height, only those in view (and a few more) are in
// the DOM, so that a list of 20,000 entries costs what 40 do.

export class VList {
  // el is the scrolling container, spacer a child whose height is the whole list's.
  // render(item, rowEl) fills a row (with text only); onClick(item) is called on a click.
  constructor(el, spacer, rowHeight, render, onClick) {
    this.el = el;
    this.spacer = spacer;
    this.h = rowHeight;
    this.render = render;
    this.items = [];
    this.rows = new Map(); // index → row element
    this.current = -3; // the row at the playhead: -1 before the first, -3 no playhead (no replay)
    this.selected = null;
    this.pending = false;
    el.addEventListener('scroll', () => this.schedule());
    el.addEventListener('click', (e) => {
      const row = e.target.closest('.vrow');
      if (!row) return;
      const item = this.items[Number(row.dataset.index)];
      if (item) {
        this.selected = item;
        this.restyle();
        onClick(item);
      }
    });
  }

  set(items) {
    this.items = items;
    this.spacer.style.height = items.length * this.h + 'px';
    this.paint(true);
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.paint(false);
    });
  }

  // setCurrent marks the row at the playhead; follow scrolls it into view.
  setCurrent(i, follow) {
    if (i === this.current) return;
    this.current = i;
    if (follow && i >= 0) {
      const top = i * this.h;
      const view = this.el.clientHeight;
      if (top < this.el.scrollTop || top + this.h > this.el.scrollTop + view) {
        this.el.scrollTop = Math.max(0, top - view / 2);
      }
    }
    this.restyle();
  }

  // restyle updates the marks of the rows in the DOM (the playhead's, the selection),
  // keeping the elements, so that a row being clicked is not replaced under the pointer.
  restyle() {
    for (const [i, row] of this.rows) this.mark(row, i);
  }

  mark(row, i) {
    row.classList.toggle('current', i === this.current);
    row.classList.toggle('future', this.current >= -1 && i > this.current);
    row.classList.toggle('selected', this.items[i] === this.selected);
  }

  paint(all) {
    const view = this.el.clientHeight || 400;
    const first = Math.max(0, Math.floor(this.el.scrollTop / this.h) - 10);
    const last = Math.min(this.items.length, Math.ceil((this.el.scrollTop + view) / this.h) + 10);
    for (const [i, row] of this.rows) {
      if (i < first || i >= last || all) {
        row.remove();
        this.rows.delete(i);
      }
    }
    for (let i = first; i < last; i++) {
      if (this.rows.has(i)) continue;
      const item = this.items[i];
      const row = document.createElement('div');
      row.className = 'vrow';
      row.dataset.index = String(i);
      row.style.top = i * this.h + 'px';
      row.style.height = this.h + 'px';
      this.mark(row, i);
      this.render(item, row);
      this.spacer.appendChild(row);
      this.rows.set(i, row);
    }
  }
}

// cell appends a text cell to a row: untrusted text only ever goes in as textContent.
export function cell(row, cls, text, title) {
  const c = document.createElement('span');
  c.className = cls;
  c.textContent = text;
  if (title) c.title = title;
  row.appendChild(c);
  return c;
}
