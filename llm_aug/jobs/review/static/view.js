/* Rendering: every value from the run is set as text (textContent), never as HTML. */
"use strict";

window.Review = window.Review || {};

(function (R) {
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function levelName(levels, level) {
    const info = levels.find((lv) => lv.level === level);
    return info ? `${level} · ${info.name_zh || info.name}` : String(level);
  }

  function describe(decision, levels) {
    /* "accepted (4 · ...)", "rejected: near copy", "relabelled to 6 · ...", "skipped". */
    if (!decision) return "";
    if (decision.decision === "accept") return `accepted (${levelName(levels, decision.level)})`;
    if (decision.decision === "relabel") return `relabelled to ${levelName(levels, decision.level)}`;
    if (decision.decision === "reject") return `rejected: ${decision.reason}`;
    return "skipped";
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toFixed(digits);
  }

  function postList(list, posts, levels, showSimilarity) {
    list.replaceChildren();
    if (!posts.length) list.append(el("li", "muted", "none"));
    for (const post of posts) {
      const li = el("li");
      const meta = el("div", "meta");
      meta.append(el("span", "level-badge small", post.label === null ? "?" : levelName(levels, post.label)));
      if (showSimilarity) meta.append(el("span", "muted", `similarity ${fmt(post.similarity, 2)}`));
      meta.append(el("span", "muted mono", post.id));
      li.append(meta, el("p", "text small", post.text));
      list.append(li);
    }
  }

  function renderDefinition(levels, level) {
    const box = $("definition");
    box.replaceChildren();
    const info = levels.find((lv) => lv.level === level);
    if (!info) return;
    box.append(el("p", "def-name", `${info.level} · ${info.name_zh} / ${info.name}`));
    if (info.definition_zh) box.append(el("p", "def", info.definition_zh));
    box.append(el("p", "def muted", info.definition));
  }

  function renderScores(scores) {
    const table = $("scores");
    table.replaceChildren();
    const names = Object.keys(scores).sort();
    if (!names.length) table.append(el("tr", "muted", "no filter scores"));
    for (const name of names) {
      const tr = el("tr");
      tr.append(el("th", null, name), el("td", "num", fmt(scores[name], 3)));
      table.append(tr);
    }
  }

  function renderItem(state) {
    const item = state.item;
    const levels = state.session.levels;
    $("position").textContent = `${state.index + 1} / ${state.ids.length}`;
    $("intended").textContent = `intended level ${levelName(levels, item.level)}`;
    $("method").textContent = item.method;
    $("post-id").textContent = item.id;
    $("text").textContent = item.text;
    renderMine(state);
    renderDefinition(levels, item.level);
    postList($("exemplars"), item.exemplars, levels, false);
    renderScores(item.scores);
    postList($("neighbours"), item.neighbours, levels, true);
  }

  function renderMine(state) {
    /* What the server has on disk for this post; a pending decision is shown as not saved yet. */
    const box = $("mine");
    const pending = state.pending && state.pending.row_id === state.item.id ? state.pending : null;
    box.className = "decision";
    if (pending) {
      box.textContent = `${describe(pending, state.session.levels)} — not saved yet`;
      box.classList.add("pending");
    } else if (state.mine) {
      box.textContent = `✓ saved: ${describe(state.mine, state.session.levels)}`;
      box.classList.add("saved", state.mine.decision);
    } else {
      box.textContent = "undecided";
      box.classList.add("open");
    }
  }

  function renderQueue(state) {
    const list = $("queue-list");
    list.replaceChildren();
    $("queue-count").textContent = `${state.total} posts` + (state.rows.length < state.total ? ` (first ${state.rows.length} listed)` : "");
    state.rows.forEach((row, i) => {
      const li = el("li", row.id === (state.item && state.item.id) ? "current" : "");
      li.dataset.index = String(i);
      li.append(el("span", "level-badge small", row.level));
      li.append(el("span", "excerpt", row.excerpt));
      li.append(el("span", "mark " + (row.mine ? row.mine.decision : "open"), row.mine ? row.mine.decision : ""));
      list.append(li);
    });
  }

  function renderProgress(status, levels) {
    const table = $("progress");
    table.replaceChildren();
    const head = el("tr");
    for (const h of ["level", "decided", "acc.", "rej.", "relab.", "skip"]) head.append(el("th", null, h));
    table.append(head);
    for (const p of status.mine) {
      const tr = el("tr");
      const cell = el("td", "bar-cell");
      const bar = el("div", "bar");
      const fill = el("div", "fill");
      fill.style.width = p.total ? `${(100 * p.decided) / p.total}%` : "0";
      bar.append(fill);
      cell.append(el("span", null, `${p.decided}/${p.total}`), bar);
      tr.append(el("td", "num", p.level), cell, el("td", "num", p.accepted), el("td", "num", p.rejected),
        el("td", "num", p.relabelled), el("td", "num", p.skipped));
      tr.title = levelName(levels, p.level) + (p.total ? "" : ": no synthetic posts");
      if (!p.total) tr.className = "empty";
      table.append(tr);
    }
    renderAgreement(status);
  }

  function renderAgreement(status) {
    const box = $("agreement");
    box.replaceChildren();
    if (status.reviewers.length < 2) {
      box.append(el("p", "muted", "Agreement appears when a second reviewer has decided posts."));
      return;
    }
    for (const pair of status.agreement) {
      box.append(el("h2", null, `Agreement ${pair.reviewers[0]} / ${pair.reviewers[1]}`));
      box.append(el("p", "muted", `${pair.n_both} posts decided by both; agree ${fmt(pair.percent, 1)}%, κ ${fmt(pair.kappa, 2)}`));
      const table = el("table", "progress");
      const head = el("tr");
      for (const h of ["level", "both", "agree %", "κ"]) head.append(el("th", null, h));
      table.append(head);
      for (const [level, cell] of Object.entries(pair.per_level)) {
        const tr = el("tr");
        tr.append(el("td", "num", level), el("td", "num", cell.n), el("td", "num", fmt(cell.percent, 1)),
          el("td", "num", fmt(cell.kappa, 2)));
        table.append(tr);
      }
      box.append(table);
    }
  }

  function renderPrompt(state) {
    const box = $("prompt");
    box.replaceChildren();
    box.classList.toggle("hidden", state.mode === "normal");
    if (state.mode === "reject") {
      box.append(el("p", "prompt-title", "Reject — why? (Esc cancels)"));
      state.session.reasons.forEach((reason, i) => {
        const b = el("button", "choice", null);
        b.type = "button";
        b.dataset.key = String(i + 1);
        b.append(el("kbd", null, i + 1), document.createTextNode(" " + reason));
        box.append(b);
      });
    } else if (state.mode === "relabel") {
      const typed = state.levelBuffer ? ` — typed ${state.levelBuffer} (Enter confirms)` : "";
      box.append(el("p", "prompt-title", `Relabel to which level?${typed} (Esc cancels)`));
      for (const lv of state.session.levels) {
        const b = el("button", "choice" + (lv.level === state.item.level ? " same" : ""), null);
        b.type = "button";
        b.dataset.level = String(lv.level);
        b.append(el("kbd", null, lv.level), document.createTextNode(" " + (lv.name_zh || lv.name)));
        box.append(b);
      }
    }
  }

  function renderSave(save) {
    /* save: {kind: idle|saving|saved|failed|refused, text} */
    const box = $("save");
    box.className = "save " + save.kind;
    box.textContent = save.text;
    $("retry").classList.toggle("hidden", save.kind !== "failed");
  }

  R.view = { $, el, renderItem, renderMine, renderQueue, renderProgress, renderPrompt, renderSave, describe, levelName };
})(window.Review);
