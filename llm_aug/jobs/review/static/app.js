/* The review page: one post at a time, keyboard first. A decision is shown as saved only
   after the server answered that it is on disk; a failed save is shown and retried. */
"use strict";

(function (R) {
  const { api, view } = R;
  const $ = view.$;
  const RETRY_MS = [1000, 2000, 4000, 8000, 15000];

  const state = {
    session: null, ids: [], rows: [], total: 0, index: 0, item: null, mine: null,
    mode: "normal", levelBuffer: "", pending: null, inFlight: false, attempts: 0, retryTimer: null,
    decided: new Set(),  // ids of the queue this reviewer decided (the summaries list only the first ones)
  };

  function setSave(kind, text) {
    view.renderSave({ kind, text });
  }

  function showError(err) {
    setSave("refused", err.status === 403 ? "refused (403): " + err.message : "error: " + err.message);
  }

  // --- loading ---------------------------------------------------------------------

  async function start() {
    try {
      state.session = await api.session();
    } catch (err) {
      showError(err);
      return;
    }
    const s = state.session;
    $("run").textContent = s.run;
    $("reviewer").textContent = "reviewer: " + s.reviewer;
    fillFilters(s);
    setSave("idle", "all decisions saved");
    await loadQueue(true);
    await refreshStatus();
  }

  function fillFilters(s) {
    const form = $("filters");
    for (const lv of s.levels) form.level.append(new Option(view.levelName(s.levels, lv.level), lv.level));
    for (const m of s.methods) form.method.append(new Option(m, m));
    for (const name of s.scores) form.score.append(new Option(name, name));
    form.addEventListener("change", () => loadQueue(true));
    form.addEventListener("submit", (event) => { event.preventDefault(); loadQueue(true); });
  }

  function readFilters() {
    const form = $("filters");
    return {
      level: form.level.value, method: form.method.value, status: form.status.value, score: form.score.value,
      min: form.min.value, max: form.max.value, disagreement: form.disagreement.checked ? "1" : "",
    };
  }

  async function loadQueue(resume) {
    let data;
    try {
      data = await api.queue(readFilters());
    } catch (err) {
      showError(err);
      return;
    }
    const current = state.item && state.item.id;
    Object.assign(state, { ids: data.ids, rows: data.rows, total: data.total, decided: new Set(data.decided) });
    let at = resume ? data.ids.indexOf(data.resume) : data.ids.indexOf(current);
    if (at < 0) at = 0;
    if (!data.ids.length) {
      state.item = null;
      $("text").textContent = "No posts match these filters.";
      view.renderQueue(state);
      return;
    }
    await show(at);
  }

  async function show(index) {
    if (index < 0 || index >= state.ids.length) return;
    let data;
    try {
      data = await api.item(state.ids[index]);
    } catch (err) {
      showError(err);
      return;
    }
    Object.assign(state, { index, item: data.item, mine: data.mine, mode: "normal", levelBuffer: "" });
    view.renderItem(state);
    view.renderPrompt(state);
    view.renderQueue(state);
    const current = document.querySelector("#queue-list li.current");
    if (current) current.scrollIntoView({ block: "nearest" });
  }

  async function refreshStatus() {
    try {
      view.renderProgress(await api.status(), state.session.levels);
    } catch (err) {
      showError(err);
    }
  }

  // --- deciding and saving -----------------------------------------------------------

  function decide(decision) {
    if (!state.item) return;
    if (state.pending) {
      setSave("failed", "the previous decision is not saved yet: " + view.describe(state.pending, state.session.levels) +
        " (retrying); decide again once it is saved");
      return;
    }
    state.pending = Object.assign({ row_id: state.item.id }, decision);
    state.attempts = 0;
    state.mode = "normal";
    view.renderPrompt(state);
    save();
  }

  async function save() {
    const pending = state.pending;
    if (!pending || state.inFlight) return;  // one POST at a time ("retry now" during a retry)
    clearTimeout(state.retryTimer);
    setSave("saving", `saving ${pending.row_id}…`);
    view.renderMine(state);
    let saved;
    state.inFlight = true;
    try {
      saved = (await api.decide(pending)).saved;
    } catch (err) {
      failed(pending, err);
      return;
    } finally {
      state.inFlight = false;
    }
    state.pending = null;
    acknowledged(saved);
  }

  function failed(pending, err) {
    const what = view.describe(pending, state.session.levels);
    if (!err.retryable) {
      // the server refused this decision (bad request, or a new session token): retrying cannot help
      state.pending = null;
      setSave("refused", `NOT SAVED (${what} on ${pending.row_id}): ${err.message}`);
      view.renderMine(state);
      return;
    }
    const wait = RETRY_MS[Math.min(state.attempts, RETRY_MS.length - 1)];
    state.attempts += 1;
    setSave("failed", `NOT SAVED (${what} on ${pending.row_id}): ${err.message}; retry ${state.attempts} in ${wait / 1000} s`);
    view.renderMine(state);
    state.retryTimer = setTimeout(save, wait);
  }

  function acknowledged(saved) {
    setSave("saved", `saved ${saved.row_id}: ${view.describe(saved, state.session.levels)}`);
    state.decided.add(saved.row_id);
    const row = state.rows.find((r) => r.id === saved.row_id);
    if (row) row.mine = saved;
    if (state.item && state.item.id === saved.row_id) {
      state.mine = saved;
      view.renderMine(state);
      if (state.index + 1 < state.ids.length) show(state.index + 1);
      else view.renderQueue(state);
    } else {
      view.renderQueue(state);
    }
    refreshStatus();
  }

  function nextOpen() {
    for (let i = state.index + 1; i < state.ids.length; i += 1) {
      if (!state.decided.has(state.ids[i])) return show(i);
    }
    return undefined;
  }

  // --- keys ----------------------------------------------------------------------------

  function levelKey(key) {
    /* Digits build a level; it is taken as soon as no longer level starts with what was typed. */
    const levels = state.session.levels.map((lv) => lv.level);
    if (key === "Enter" && state.levelBuffer) return relabel(Number(state.levelBuffer));
    if (key === "Backspace") state.levelBuffer = state.levelBuffer.slice(0, -1);
    if (/^[0-9]$/.test(key)) {
      const typed = state.levelBuffer + key;
      if (!levels.some((lv) => String(lv).startsWith(typed))) {
        setSave("refused", `no level ${typed} in this scheme`);
        state.levelBuffer = "";
      } else if (levels.some((lv) => String(lv).startsWith(typed) && String(lv) !== typed)) {
        state.levelBuffer = typed;
      } else {
        return relabel(Number(typed));
      }
    }
    view.renderPrompt(state);
    return undefined;
  }

  function relabel(level) {
    state.levelBuffer = "";
    if (level === state.item.level) {
      setSave("refused", `level ${level} is the intended level: press a to accept instead`);
      view.renderPrompt(state);
      return;
    }
    decide({ decision: "relabel", level });
  }

  function rejectKey(key) {
    const i = Number(key) - 1;
    if (/^[1-9]$/.test(key) && i < state.session.reasons.length) decide({ decision: "reject", reason: state.session.reasons[i] });
  }

  const NORMAL = {
    a: () => decide({ decision: "accept" }),
    r: () => { state.mode = "reject"; view.renderPrompt(state); },
    l: () => { state.mode = "relabel"; state.levelBuffer = ""; view.renderPrompt(state); },
    s: () => decide({ decision: "skip" }),
    j: () => show(state.index + 1), ArrowDown: () => show(state.index + 1), ArrowRight: () => show(state.index + 1),
    k: () => show(state.index - 1), ArrowUp: () => show(state.index - 1), ArrowLeft: () => show(state.index - 1),
    n: nextOpen,
    "?": () => $("help").classList.toggle("hidden"),
  };

  const MOVES = new Set(["j", "k", "ArrowDown", "ArrowUp", "ArrowLeft", "ArrowRight"]);

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const inForm = /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName);
    if (event.key === "Escape") {
      state.mode = "normal";
      state.levelBuffer = "";
      $("help").classList.add("hidden");
      if (inForm) event.target.blur();
      view.renderPrompt(state);
      return;
    }
    if (inForm || !state.session || !state.item) return;
    if (!$("help").classList.contains("hidden") && event.key !== "?") return;  // help open: only ? or Esc close it
    const handler = state.mode === "reject" ? rejectKey : state.mode === "relabel" ? levelKey : NORMAL[event.key];
    if (!handler) return;
    if (event.repeat && !MOVES.has(event.key)) return;  // a held key decides one post, not a run of them
    event.preventDefault();
    handler(event.key);
  }

  function onClick(event) {
    const button = event.target.closest("button");
    const li = event.target.closest("#queue-list li");
    if (event.target.id === "help") return $("help").classList.add("hidden");  // a click beside the card
    if (li) return show(Number(li.dataset.index));
    if (button && button.id === "retry") return state.pending ? save() : undefined;
    if (button && button.id === "help-button") return $("help").classList.toggle("hidden");
    if (!button || !state.item) return undefined;
    if (button.dataset.level !== undefined) return relabel(Number(button.dataset.level));
    if (button.dataset.key) onKey({ key: button.dataset.key, target: document.body, preventDefault() {} });
    return undefined;
  }

  window.addEventListener("keydown", onKey);
  document.addEventListener("click", onClick);
  window.addEventListener("beforeunload", (event) => {
    if (state.pending) {
      event.preventDefault();
      event.returnValue = "A decision is not saved yet.";
    }
  });
  R.state = state;
  start();
})(window.Review);
