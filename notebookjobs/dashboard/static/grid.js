// The queue's table (notebookjobs/dashboard/grid.py): one page of jobs drawn from the `rows`
// trait. No network, no framework: this module travels to the page as a trait of the widget.
//
// - Relative times ("3m ago", a running job's duration) are computed here from epoch
//   milliseconds and tick here, so the kernel sends nothing while nothing changes. They are
//   written short ("1m 5s", as GitHub's runs are): beside Lab's file browser every column
//   has to fit in ~850 px.
// - Every heading and value reads whole: a column whose text does not fit grows to it (and
//   never shrinks back, so ticking times do not make the table jitter); only target and
//   arguments give up room, cut with an ellipsis, the full text on hover.
// - Rows never move under the pointer: while it is over the table, a new page whose order
//   differs waits until the pointer leaves (rows that only changed content are redrawn).
// - Cancel of a running job asks once more ("Stop?") before it is sent.
// - Outcomes of Cancel/Retry show on their row and fade.
// - The tab's visibility is reported (`page_hidden`) so that a hidden dashboard pauses.

const COLUMNS = [
  ["select", ""], ["id", "id"], ["status", "status"], ["target", "target"],
  ["arguments", "arguments"], ["attempts", "attempts"], ["priority", "prio"],
  ["wait", "wait"], ["duration", "duration"], ["created", "created"], ["after", "after"],
  ["actions", ""],
];
//: the columns that give up room (cut with an ellipsis); every other column grows to its text
const SQUEEZED = new Set(["target", "arguments"]);
const OUTCOME_MS = 4000;
const CONFIRM_MS = 4000;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function span(seconds) {
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function ago(ms, now) {
  if (ms === null || ms === undefined) return "";
  const s = (now - ms) / 1000;
  if (s < 5) return "just now";
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function exact(ms) {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// [text, title] of the time columns of a row at `now`
function times(row, now) {
  let wait = "", duration = "";
  if (row.status === "pending" && row.run_at !== null) {
    const s = (row.run_at - now) / 1000;
    wait = s > 0 ? `in ${span(s)}` : span(-s);
  } else if (row.started !== null && row.run_at !== null) {
    wait = span((row.started - row.run_at) / 1000);
  }
  if (row.started !== null) {
    const end = row.status === "running" ? now : row.finished;
    if (end !== null && end !== undefined) duration = span((end - row.started) / 1000);
  }
  return {
    wait: [wait, row.run_at !== null ? `run at ${exact(row.run_at)}` : ""],
    duration: [duration, row.started !== null ? `started ${exact(row.started)}` +
      (row.finished !== null ? `, finished ${exact(row.finished)}` : "") : ""],
    created: [ago(row.created, now), exact(row.created)],
  };
}

function shortTarget(target) {
  const parts = target.split(".");
  return parts.length > 2 ? parts.slice(-2).join(".") : target;
}

function render({ model, el: host }) {
  host.classList.add("nj-grid");
  const root = el("div", "nj-grid-root");
  const scroller = el("div", "nj-grid-scroll");
  const note = el("div", "nj-grid-note");
  root.append(scroller, note);
  host.appendChild(root);

  let hovering = false;
  let shownOrder = [];
  let waiting = false;           // a new order waits for the pointer to leave
  const outcomes = new Map();    // id -> {text, kind, until}
  const confirming = new Map();  // id -> until (ms)
  const grown = new Map();       // column -> px it grew to (``fit``)
  let tick = null;

  function send(action, id) {
    model.send({ action, id });
  }

  function selectedSet() {
    return new Set(model.get("selected") || []);
  }

  function setSelected(ids) {
    model.set("selected", [...ids]);
    model.save_changes();
  }

  function cell(row, name, label, now, t) {
    const td = el("td", `nj-col-${name}`);
    td.dataset.label = label;
    td.dataset.col = name;
    switch (name) {
      case "select": {
        const box = el("input", "nj-select");
        box.type = "checkbox";
        box.checked = selectedSet().has(row.id);
        box.title = `select job ${row.id}`;
        box.addEventListener("change", () => {
          const ids = selectedSet();
          if (box.checked) ids.add(row.id); else ids.delete(row.id);
          setSelected(ids);
        });
        td.appendChild(box);
        break;
      }
      case "id": td.textContent = row.id; break;
      case "status": {
        const badge = el("span", `nj-status nj-status-${row.status}`, row.label);
        badge.classList.add(`nj-status-${row.id}`);
        td.appendChild(badge);
        if (row.progress !== null && row.progress !== undefined) {
          const pct = Math.round(Math.max(0, Math.min(1, row.progress)) * 100);
          const bar = el("span", "nj-bar");
          const fill = el("span", "nj-bar-fill");
          fill.style.width = `${pct}%`;
          bar.appendChild(fill);
          td.title = `${row.label} ${pct}%${row.progress_text ? " · " + row.progress_text : ""}`;
          td.appendChild(bar);
        } else if (row.progress_text) {
          td.appendChild(el("span", "nj-pct", row.progress_text));
          td.title = `${row.label} · ${row.progress_text}`;
        }
        break;
      }
      case "target": td.textContent = shortTarget(row.target); td.title = row.target; break;
      case "arguments": td.textContent = row.arguments; td.title = row.arguments; break;
      case "attempts": td.textContent = row.attempts; break;
      case "priority": td.textContent = row.priority; break;
      case "wait": case "duration": case "created":
        td.textContent = t[name][0]; td.title = t[name][1]; td.classList.add("nj-time");
        break;
      case "after": td.textContent = row.after; break;
      case "actions": {
        if (row.action) {
          const confirmUntil = confirming.get(row.id) || 0;
          const asking = row.action === "cancel" && confirmUntil > now;
          const button = el("button", `nj-btn nj-${row.action} nj-${row.action}-${row.id}`,
            asking ? "Stop?" : row.action === "cancel" ? "Cancel" : "Retry");
          button.title = row.action === "cancel" ? `cancel job ${row.id}` : `dispatch job ${row.id} again`;
          if (asking) button.classList.add("nj-confirm");
          button.addEventListener("click", () => {
            if (row.action === "cancel" && row.status === "running" &&
                (confirming.get(row.id) || 0) <= Date.now()) {
              confirming.set(row.id, Date.now() + CONFIRM_MS);
              draw(true);
              setTimeout(() => draw(true), CONFIRM_MS + 50);
              return;
            }
            confirming.delete(row.id);
            send(row.action, row.id);
          });
          td.appendChild(button);
        }
        const details = el("button", `nj-btn nj-details nj-details-${row.id}`, "Details");
        details.title = `show job ${row.id}`;
        details.addEventListener("click", () => send("details", row.id));
        td.appendChild(details);
        const out = outcomes.get(row.id);
        if (out && out.until > now) {
          const badge = el("span", `nj-outcome nj-outcome-${out.kind}`, out.text);
          badge.style.animationDelay = `${Math.max(0, out.until - now - 1000)}ms`;
          td.appendChild(badge);
        }
        break;
      }
    }
    return td;
  }

  function rowNode(row, now, shown) {
    const tr = el("tr", `nj-row nj-row-${row.id} nj-row-status-${row.status}`);
    tr.dataset.id = row.id;
    const t = times(row, now);
    for (const [name, label] of shown) tr.appendChild(cell(row, name, label, now, t));
    return tr;
  }

  function draw(force) {
    const rows = model.get("rows") || [];
    const order = rows.map((r) => r.id);
    // Rows that only go or come at the end (Details split the page there) move nothing above.
    const common = Math.min(order.length, shownOrder.length);
    const sameStart = order.slice(0, common).every((id, i) => id === shownOrder[i]);
    if (hovering && !force && shownOrder.length && !sameStart) {
      waiting = true;
      note.textContent = "the queue changed: it is shown when the pointer leaves the table";
      return;
    }
    waiting = false;
    note.textContent = "";
    shownOrder = order;
    const now = Date.now();
    const hasAfter = rows.some((r) => r.after);
    const shown = COLUMNS.filter(([name]) => name !== "after" || hasAfter);
    const table = el("table", "nj-table");
    const colgroup = el("colgroup");
    for (const [name] of shown) {
      const col = el("col", `nj-col-${name}`);
      if (grown.has(name)) col.style.width = `${grown.get(name)}px`;
      colgroup.appendChild(col);
    }
    table.appendChild(colgroup);
    // The rows below an open Details have the headings too, hidden but sized, so that their
    // columns grow as the table's above do and line up with them.
    const header = model.get("header");
    const thead = el("thead", header ? "" : "nj-ghost");
    const headings = el("tr");
    for (const [name, label] of shown) {
      const th = el("th", `nj-col-${name}`, label);
      th.dataset.col = name;
      if (name === "select" && rows.length && header) {
        const all = el("input", "nj-select-all");
        all.type = "checkbox";
        all.title = "select every job of this page";
        const chosen = selectedSet();
        all.checked = rows.every((r) => chosen.has(r.id));
        all.addEventListener("change", () => {
          const ids = selectedSet();
          for (const r of rows) { if (all.checked) ids.add(r.id); else ids.delete(r.id); }
          setSelected(ids);
        });
        th.textContent = "";
        th.appendChild(all);
      }
      headings.appendChild(th);
    }
    thead.appendChild(headings);
    table.appendChild(thead);
    const tbody = el("tbody");
    for (const row of rows) tbody.appendChild(rowNode(row, now, shown));
    table.appendChild(tbody);
    const left = scroller.scrollLeft;
    scroller.replaceChildren(table);
    fit(table, colgroup);
    scroller.scrollLeft = left;
    if (!rows.length && model.get("header")) {
      scroller.appendChild(el("div", "nj-empty", model.get("empty_text")));
    }
    schedule(rows);
  }

  // A column whose heading or a value is wider than the column grows to it (not in the card
  // layout, where the table is a block and its columns do not apply).
  function fit(table, colgroup) {
    if (getComputedStyle(table).display !== "table") return;
    const need = new Map();
    for (const row of table.rows) {
      for (const cell of row.cells) {
        const name = cell.dataset.col;
        if (SQUEEZED.has(name) || cell.scrollWidth <= cell.clientWidth) continue;
        // +1: scrollWidth is rounded, the text's width may not be
        need.set(name, Math.max(need.get(name) || 0, cell.scrollWidth + 1));
      }
    }
    for (const [name, px] of need) {
      grown.set(name, Math.max(grown.get(name) || 0, px));
      const col = colgroup.querySelector(`col.nj-col-${name}`);
      if (col) col.style.width = `${grown.get(name)}px`;
    }
  }

  // Ticking: every second while a row counts (running, or pending with a countdown), else
  // every 30 s for the "ago" texts; nothing while the tab is hidden.
  function schedule(rows) {
    if (tick) clearTimeout(tick);
    const busy = rows.some((r) => r.status === "running" || r.status === "pending") ||
      outcomes.size > 0;
    tick = setTimeout(() => {
      tick = null;
      const now = Date.now();
      for (const [id, out] of outcomes) if (out.until <= now) outcomes.delete(id);
      if (document.hidden) { schedule(model.get("rows") || []); return; }
      if (!waiting) draw(true); else schedule(model.get("rows") || []);
    }, busy ? 1000 : 30000);
  }

  root.addEventListener("pointerenter", () => { hovering = true; });
  root.addEventListener("pointerleave", () => {
    hovering = false;
    if (waiting) draw(true);
  });

  const onRows = () => draw(false);
  const onSelected = () => draw(true);
  const onMessage = (msg) => {
    if (msg && msg.outcome) {
      const o = msg.outcome;
      outcomes.set(o.id, { text: o.text, kind: o.kind, until: Date.now() + OUTCOME_MS });
      draw(true);
    }
  };
  model.on("change:rows", onRows);
  model.on("change:selected", onSelected);
  model.on("change:header", onSelected);
  model.on("msg:custom", onMessage);

  function visibility() {
    if (!model.get("report_visibility")) return;
    if (model.get("page_hidden") !== document.hidden) {
      model.set("page_hidden", document.hidden);
      model.save_changes();
    }
  }
  document.addEventListener("visibilitychange", visibility);
  window.addEventListener("pagehide", visibility);
  visibility();
  draw(true);

  return () => {
    if (tick) clearTimeout(tick);
    document.removeEventListener("visibilitychange", visibility);
    window.removeEventListener("pagehide", visibility);
    model.off("change:rows", onRows);
    model.off("change:selected", onSelected);
    model.off("change:header", onSelected);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
