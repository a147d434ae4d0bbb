// The emulator page's script: draws what the server renders, sends what a person does.
// Every HTML fragment it inserts comes from the server's renderer, which escapes all text;
// text of its own (names, notices, toasts) goes in through textContent only.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const byTestId = (id, root = document) => $(`[data-testid="${id}"]`, root);
  const params = new URLSearchParams(location.search);
  const drawn = new WeakMap(); // element -> the HTML it was drawn from
  const at = {
    user: params.get("user"),
    channel: params.get("channel"),
    thread: null,
    view: "channel",
    version: null,
    people: "",
    channels: "",
  };
  let poller = null; // the AbortController of the state request in flight

  // --- drawing ----------------------------------------------------------------------------
  function fromHtml(html, key) {
    const item = document.createElement("div");
    item.className = "item";
    item.dataset.key = key;
    item.innerHTML = html;
    drawn.set(item, html);
    return item;
  }

  /** Keyed children: unchanged ones stay as they are, changed ones are replaced in place. */
  function reconcile(container, items) {
    const existing = new Map([...container.children].map((el) => [el.dataset.key, el]));
    const wanted = new Set(items.map((item) => item.key));
    for (const [key, el] of existing) if (!wanted.has(key)) el.remove();
    let previous = null;
    let added = false;
    for (const item of items) {
      let el = existing.get(item.key);
      if (!el || drawn.get(el) !== item.html) {
        const fresh = fromHtml(item.html, item.key);
        if (el) el.replaceWith(fresh);
        else added = true;
        el = fresh;
      }
      const expected = previous ? previous.nextSibling : container.firstChild;
      if (el !== expected) container.insertBefore(el, expected);
      previous = el;
    }
    return added;
  }

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }

  function drawSwitcher(state) {
    const people = JSON.stringify(state.people);
    const select = byTestId("user-switcher");
    if (people !== at.people) {
      at.people = people;
      select.replaceChildren(
        ...state.people.map((person) => {
          const option = document.createElement("option");
          option.value = person.id;
          option.textContent = person.role ? `${person.name} (${person.role})` : person.name;
          option.dataset.testid = `user-${person.id}`;
          return option;
        }),
      );
    }
    select.value = state.viewer;
  }

  function drawChannels(state) {
    const channels = JSON.stringify(state.channels);
    const list = byTestId("channel-list");
    if (channels !== at.channels) {
      at.channels = channels;
      list.replaceChildren(
        ...state.channels.map((channel) => {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "nav-item";
          button.dataset.nav = "channel";
          button.dataset.channelId = channel.id;
          button.dataset.testid = `channel-${channel.id}`;
          button.textContent = channel.dm ? `💬 ${channel.name}` : `# ${channel.name}`;
          return button;
        }),
      );
    }
    for (const button of list.children) {
      button.classList.toggle(
        "active", at.view === "channel" && button.dataset.channelId === state.channel,
      );
    }
    byTestId("nav-home").classList.toggle("active", at.view === "home");
    const shown = state.channels.find((c) => c.id === state.channel);
    byTestId("channel-title").textContent = shown
      ? (shown.dm ? shown.name : `# ${shown.name}`)
      : "No channel";
  }

  function drawModal(modal) {
    const overlay = byTestId("modal-overlay");
    const current = overlay.firstElementChild;
    if (!modal) {
      overlay.replaceChildren();
      overlay.hidden = true;
      return;
    }
    if (current && drawn.get(current) === modal.html) return;
    const typed = current && current.dataset.viewId === modal.id ? inputValues(current) : null;
    const fresh = fromHtml(modal.html, modal.id);
    fresh.dataset.viewId = modal.id;
    overlay.replaceChildren(fresh);
    overlay.hidden = false;
    // Slack keeps what was typed when the app updates the open modal: inputs match by ID.
    if (typed) {
      for (const field of fresh.querySelectorAll("[data-input]")) {
        const key = inputKey(field);
        if (key in typed) field.value = typed[key];
      }
    }
  }

  function draw(state) {
    at.user = state.viewer;
    at.channel = state.channel;
    byTestId("team").textContent = state.team;
    for (const el of document.querySelectorAll(".bot-name")) el.textContent = state.bot;
    drawSwitcher(state);
    drawChannels(state);

    const messages = byTestId("messages");
    const follow = nearBottom(messages);
    if (reconcile(messages, state.messages) && follow) messages.scrollTop = messages.scrollHeight;

    const pane = byTestId("thread-pane");
    if (state.thread && at.thread === state.thread.ts) {
      pane.hidden = false;
      const items = byTestId("thread-items");
      if (reconcile(items, state.thread.items)) items.scrollTop = items.scrollHeight;
    } else {
      pane.hidden = true;
      byTestId("thread-items").replaceChildren();
      if (at.thread && !state.thread) at.thread = null;
    }

    byTestId("channel-view").hidden = at.view !== "channel";
    byTestId("home-view").hidden = at.view !== "home";
    reconcile($(".home-slot"), state.home ? [{ key: state.home.id, html: state.home.html }] : []);
    const empty = byTestId("home-empty");
    empty.hidden = Boolean(state.home);
    empty.textContent = `${state.bot} has not published a Home tab for you yet.`;
    drawModal(state.modal);
  }

  // --- staying current --------------------------------------------------------------------
  async function pollForever() {
    for (;;) {
      poller = new AbortController();
      const query = new URLSearchParams();
      if (at.user) query.set("user", at.user);
      if (at.channel) query.set("channel", at.channel);
      if (at.thread) query.set("thread", at.thread);
      if (at.version !== null) query.set("since", String(at.version));
      try {
        const response = await fetch(`api/state?${query}`, { signal: poller.signal });
        const state = await response.json();
        if (!response.ok) throw new Error(state.error || response.statusText);
        draw(state);
        at.version = state.version;
        byTestId("connection").classList.add("live");
        document.body.dataset.version = String(state.version);
      } catch (error) {
        if (error.name === "AbortError") continue; // what to show changed: ask again now
        byTestId("connection").classList.remove("live");
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  /** Show something else (another person, channel or thread): redraw at once. */
  function refresh() {
    at.version = null;
    if (poller) poller.abort();
  }

  // --- doing things -----------------------------------------------------------------------
  function toast(text) {
    const el = document.createElement("div");
    el.className = "toast";
    el.dataset.testid = "toast";
    el.textContent = text;
    byTestId("toasts").append(el);
    setTimeout(() => el.remove(), 8000);
  }

  async function send(action, body) {
    try {
      const response = await fetch(`api/${action}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: at.user, ...body }),
      });
      const outcome = await response.json();
      if (!response.ok) {
        toast(outcome.error || `the emulator answered ${response.status}`);
        return null;
      }
      if (outcome.toast) toast(outcome.toast);
      return outcome;
    } catch (error) {
      toast(`The emulator could not be reached: ${error.message}`);
      return null;
    }
  }

  function confirmFirst(button) {
    const template = button.parentElement.querySelector("template.bk-confirm");
    if (button.dataset.confirm !== "yes" || !template) return Promise.resolve(true);
    const overlay = byTestId("confirm-overlay");
    overlay.replaceChildren(template.content.cloneNode(true));
    overlay.hidden = false;
    return new Promise((resolve) => {
      const answer = (yes) => {
        overlay.hidden = true;
        overlay.replaceChildren();
        document.removeEventListener("keydown", onKey);
        resolve(yes);
      };
      const onKey = (event) => { if (event.key === "Escape") answer(false); };
      document.addEventListener("keydown", onKey);
      byTestId("confirm-yes", overlay).addEventListener("click", () => answer(true));
      byTestId("confirm-no", overlay).addEventListener("click", () => answer(false));
    });
  }

  async function press(button) {
    if (button.classList.contains("pending")) return;
    if (!(await confirmFirst(button))) return;
    if (button.dataset.url) window.open(button.dataset.url, "_blank", "noopener");
    const surface = button.closest("[data-surface]");
    const block = button.closest("[data-block-id]");
    const body = { action_id: button.dataset.actionId, block_id: block ? block.dataset.blockId : null };
    button.classList.add("pending");
    try {
      if (surface.dataset.surface === "view") {
        await send("press_in_view", { ...body, view_id: surface.dataset.viewId });
      } else {
        await send("press", { ...body, channel: surface.dataset.channel, ts: surface.dataset.ts });
      }
    } finally {
      button.classList.remove("pending");
    }
  }

  function inputKey(field) {
    return `${field.closest("[data-block-id]").dataset.blockId}\u0000${field.dataset.actionId}`;
  }

  function inputValues(modal) {
    const values = {};
    for (const field of modal.querySelectorAll("[data-input]")) values[inputKey(field)] = field.value;
    return values;
  }

  async function submitModal(modal) {
    const values = {};
    for (const field of modal.querySelectorAll("[data-input]")) {
      const blockId = field.closest("[data-block-id]").dataset.blockId;
      (values[blockId] = values[blockId] || {})[field.dataset.actionId] = field.value;
    }
    for (const el of modal.querySelectorAll('[data-testid="input-error"]')) el.textContent = "";
    byTestId("modal-error", modal).textContent = "";
    // Errors were cleared by hand: the bot's answer must be drawn even if it says the same.
    const wrapper = modal.parentElement;
    const before = drawn.get(wrapper);
    drawn.delete(wrapper);
    const button = byTestId("modal-submit", modal);
    button.classList.add("pending");
    const outcome = await send("submit", { view_id: modal.dataset.viewId, values });
    button.classList.remove("pending");
    if (!outcome) return;
    if (Object.keys(outcome.invalid || {}).length) drawn.set(wrapper, before); // nothing was sent
    for (const [blockId, message] of Object.entries(outcome.invalid || {})) {
      const slot = modal.querySelector(`[data-testid="input-error"][data-block-id="${CSS.escape(blockId)}"]`);
      if (slot) slot.textContent = message;
    }
    if (outcome.modal_error) byTestId("modal-error", modal).textContent = outcome.modal_error;
  }

  function showHome() {
    at.view = "home";
    at.thread = null;
    send("home", {}); // Slack sends app_home_opened each time the tab is opened
    refresh();
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target || target.closest('[data-testid="confirm-overlay"]')) return;
    const testid = target.dataset.testid;
    if (target.dataset.nav === "home") showHome();
    else if (target.dataset.nav === "channel") {
      at.view = "channel";
      if (at.channel !== target.dataset.channelId) at.thread = null;
      at.channel = target.dataset.channelId;
      refresh();
    } else if (testid === "replies") {
      at.thread = target.dataset.threadTs;
      refresh();
    } else if (testid === "thread-close") {
      at.thread = null;
      refresh();
    } else if (testid === "modal-submit") {
      submitModal(target.closest('[data-testid="modal"]'));
    } else if (testid === "modal-close" || testid === "modal-x") {
      send("close", { view_id: target.closest('[data-testid="modal"]').dataset.viewId });
    } else if (target.dataset.actionId !== undefined && target.closest("[data-surface]")) {
      press(target);
    }
  });

  byTestId("composer-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = byTestId("composer");
    const notice = byTestId("composer-notice");
    notice.textContent = "";
    const outcome = await send("command", { channel: at.channel, text: input.value });
    if (!outcome) return;
    if (outcome.notice) notice.textContent = outcome.notice;
    else input.value = "";
  });

  byTestId("user-switcher").addEventListener("change", (event) => {
    at.user = event.target.value;
    if (at.view === "home") send("home", {});
    refresh();
  });

  pollForever();
})();
