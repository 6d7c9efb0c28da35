// The trio-chat web client: one page, the same HTTP API as the console client.
// State lives in `state`; the server is the truth, events keep it current, and every
// message is kept by its id, so whatever arrives twice (a page and an event, a reload,
// a replay after a drop) is shown once.

import { Api } from './api.js';
import { EventStream } from './live.js';
import { $, fill, formatSize, formatTime, h, saveBlob, timeEl } from './dom.js';
import { closePanel, joinPanel, panelOpen, reportPanel, roomPanel, scheduledPanel,
  sessionsPanel, wirePanel } from './panels.js';

const STORE = {
  token: 'trio-chat.token',
  user: 'trio-chat.user',
  chat: 'trio-chat.chat', // the open chat
  unread: 'trio-chat.unread', // counts of messages this tab received live but nobody read
};
const GENERAL = 'general';
const PAGE = 50;
// Previewed inline (fetched with the token, shown from a blob: URL). SVG is not: the server
// serves it as application/octet-stream, since a browser would run its scripts.
const PREVIEWED = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);
const PREVIEW_MAX = 5 * 1024 * 1024;

export const api = new Api(() => signOut('Your session has ended: sign in again.'));
const live = new EventStream(api, {
  onEvent: handleEvent,
  onState: showConnection,
  onUnauthorized: () => signOut('Your session has ended: sign in again.'),
});

export const state = {
  me: null, // our username as the server spells it
  chats: new Map(), // chat id -> chat (see newChat)
  current: null, // the open chat's id
  where: new Map(), // message id -> chat id, to place comments
  rooms: new Map(), // room id -> Room
  status: { rate_limit: { limit: null, remaining: null, reset_at: null }, banned_until: null },
  pending: [], // attachments of the message being written
  lastRead: new Map(), // chat id -> the message id we last sent to POST /read
};

const key = (name) => name.toLowerCase();
export const isMe = (name) => state.me !== null && key(name) === key(state.me);
const dmId = (a, b) => `dm:${[key(a), key(b)].sort().join(':')}`;

// -- sign in ----------------------------------------------------------------------------

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge'
    : /Chrom(e|ium)\//.test(ua) ? 'Chromium' : /Safari\//.test(ua) ? 'Safari' : 'browser';
  return `web, ${browser}`;
}

function showLogin(note = '') {
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-note').textContent = note;
  $('#login-form').elements.username.focus();
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  const action = event.submitter && event.submitter.value === 'register' ? 'register' : 'login';
  const error = $('#login-error');
  error.textContent = '';
  const body = {
    username: form.elements.username.value.trim(),
    password: form.elements.password.value,
    device: deviceName(),
  };
  for (const button of form.querySelectorAll('button')) button.disabled = true;
  try {
    const { data } = await api.call('POST', `/${action}`, { body, auth: false });
    sessionStorage.setItem(STORE.token, data.token);
    sessionStorage.setItem(STORE.user, data.username);
    form.reset();
    await start();
  } catch (e) {
    error.textContent = e.message;
  } finally {
    for (const button of form.querySelectorAll('button')) button.disabled = false;
  }
}

async function signOut(note) {
  if (state.me === null && !sessionStorage.getItem(STORE.token)) return;
  live.stop();
  for (const p of state.pending) if (p.abort) p.abort();
  sessionStorage.removeItem(STORE.token);
  sessionStorage.removeItem(STORE.user);
  sessionStorage.removeItem(STORE.chat);
  sessionStorage.removeItem(STORE.unread);
  api.token = null;
  state.me = null;
  state.chats.clear();
  state.where.clear();
  state.rooms.clear();
  state.pending = [];
  state.current = null;
  state.lastRead.clear();
  rendered.clear();
  fill($('#messages'));
  fill($('#attachments'));
  closePanel();
  document.title = 'trio-chat';
  showLogin(note);
}

async function logout() {
  try {
    await api.call('POST', '/logout');
  } catch {
    // the session may be gone already; either way this tab forgets it
  }
  signOut('Signed out.');
}

// -- starting up ------------------------------------------------------------------------

async function start() {
  api.token = sessionStorage.getItem(STORE.token);
  state.me = sessionStorage.getItem(STORE.user);
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#me-name').textContent = state.me;
  showConnection('connecting');
  try {
    // Unread counts before anything else: receiving events moves the read position.
    const status = await api.get('/status');
    // The present, as a cursor: whatever happens after it arrives as an event, whatever
    // happened before is in the pages fetched below. (GET /updates, unlike POST /connect,
    // marks nothing as read: unread stays unread until its chat is looked at.)
    const { cursor } = await api.get('/updates', { timeout: '0' });
    const { rooms } = await api.get('/rooms');
    state.me = status.username;
    $('#me-name').textContent = state.me;
    applyStatus(status);
    for (const room of rooms) state.rooms.set(room.id, room);
    // The server counts a message as read once it is delivered to any session, so what this
    // tab received live before a reload, unseen, only the tab's own count remembers.
    const kept = JSON.parse(sessionStorage.getItem(STORE.unread) || '{}');
    for (const id of status.chats) {
      chatFor(id).unread = Math.max(status.unread[id] || 0, kept[id] || 0);
    }
    live.start(cursor);
  } catch (e) {
    if (e.status === 401 || !api.token) return; // signed out already
    toast(`${e.message} Trying again…`, true);
    setTimeout(start, 3000);
    return;
  }
  for (const room of state.rooms.values()) if (isMe(room.owner)) countRequests(room.id);
  renderChatList();
  const wanted = sessionStorage.getItem(STORE.chat);
  await openChat(wanted && state.chats.has(wanted) ? wanted : GENERAL, { focus: false });
  const link = location.pathname.match(/^\/join\/([^/]+)$/);
  if (link) {
    history.replaceState(null, '', '/');
    joinPanel(decodeURIComponent(link[1]));
  }
}

async function countRequests(roomId) {
  try {
    const { requests } = await api.get(`/rooms/${encodeURIComponent(roomId)}`);
    chatFor(roomId).requests = (requests || []).length;
    renderChatList();
  } catch {
    // shown when the room's panel is opened
  }
}

// -- chats ------------------------------------------------------------------------------

function newChat(id) {
  const chat = {
    id,
    kind: id === GENERAL ? 'general' : id.startsWith('dm:') ? 'dm' : 'room',
    peer: null, // for a private chat: the other user's name
    messages: [], // oldest first
    byId: new Map(),
    loaded: false, // its latest page was fetched
    more: false, // older messages may exist
    unread: 0,
    requests: 0, // pending join requests (rooms we own)
  };
  if (chat.kind === 'dm') {
    const [a, b] = id.slice(3).split(':');
    chat.peer = a === key(state.me) ? b : a;
  }
  return chat;
}

export function chatFor(id) {
  let chat = state.chats.get(id);
  if (!chat) {
    chat = newChat(id);
    state.chats.set(id, chat);
  }
  return chat;
}

export function chatTitle(chat) {
  if (chat.kind === 'general') return 'Common chat';
  if (chat.kind === 'dm') return chat.peer;
  const room = state.rooms.get(chat.id);
  return room ? room.name : 'Room';
}

function lastActivity(chat) {
  const last = chat.messages[chat.messages.length - 1];
  if (last) return last.sent_at;
  const room = state.rooms.get(chat.id);
  return room ? room.created_at : '';
}

export function renderChatList() {
  const chats = [...state.chats.values()].filter((c) => c.kind !== 'room' || state.rooms.has(c.id));
  chats.sort((a, b) => (a.kind === 'general' ? -1 : b.kind === 'general' ? 1
    : lastActivity(b).localeCompare(lastActivity(a))));
  fill($('#chat-list'), chats.map((chat) => {
    const title = chatTitle(chat);
    const kind = { general: 'everyone', dm: 'private', room: 'room' }[chat.kind];
    const extra = [];
    if (chat.unread) extra.push(`${chat.unread} unread`);
    if (chat.requests) extra.push(`${chat.requests} asking to join`);
    return h('li', {},
      h('button', {
        type: 'button',
        className: `chat-item ${chat.kind}`,
        dataset: { chat: chat.id },
        'aria-current': chat.id === state.current ? 'true' : null,
        'aria-label': [title, kind, ...extra].join(', '),
        onclick: () => openChat(chat.id),
      },
      h('span', { className: 'chat-name' }, title),
      h('span', { className: 'chat-kind' }, kind),
      chat.requests ? h('span', { className: 'badge requests', title: 'asking to join' }, `+${chat.requests}`) : null,
      chat.unread ? h('span', { className: 'badge', title: 'unread' }, String(chat.unread)) : null));
  }));
  const unread = chats.reduce((n, c) => n + c.unread, 0);
  document.title = unread ? `(${unread}) trio-chat` : 'trio-chat';
  sessionStorage.setItem(STORE.unread, JSON.stringify(
    Object.fromEntries(chats.filter((c) => c.unread).map((c) => [c.id, c.unread])),
  ));
}

export async function openChat(id, { focus = true } = {}) {
  const chat = chatFor(id);
  state.current = id;
  sessionStorage.setItem(STORE.chat, id);
  document.body.classList.add('show-chat');
  $('#chat-title').textContent = chatTitle(chat);
  $('#room-info').hidden = chat.kind !== 'room';
  $('#composer-error').textContent = '';
  renderLimits();
  renderMessages({ bottom: true });
  if (!chat.loaded) {
    try {
      await loadPage(chat);
    } catch (e) {
      toast(e.message, true);
    }
    if (state.current !== id) return;
    renderMessages({ bottom: true });
  }
  chat.unread = 0;
  renderChatList();
  markRead(chat);
  if (focus && matchMedia('(min-width: 48rem)').matches) $('#text').focus();
}

async function loadPage(chat, before = null) {
  const query = chat.kind === 'dm' ? { with: chat.peer } : { chat: chat.id };
  query.limit = String(PAGE);
  if (before) query.before = before;
  const { messages } = await api.get('/messages', query);
  for (const message of messages) addMessage(message);
  chat.loaded = true;
  if (before || !chat.more) chat.more = messages.length === PAGE;
}

/** Keep a message (new or again); returns true if it was new. */
function addMessage(message) {
  const chat = chatFor(message.chat);
  state.where.set(message.id, chat.id);
  if (chat.kind === 'dm') chat.peer = isMe(message.author) ? message.to : message.author;
  const known = chat.byId.get(message.id);
  if (known) {
    // The same message again (an event after its page, a replay): keep its comments.
    for (const comment of message.comments) addCommentTo(known, comment);
    return false;
  }
  chat.byId.set(message.id, message);
  // Oldest first: nearly always the end; a page of older ones goes further back.
  let at = chat.messages.length;
  while (at > 0 && chat.messages[at - 1].sent_at > message.sent_at) at -= 1;
  chat.messages.splice(at, 0, message);
  return true;
}

function addCommentTo(message, comment) {
  if (message.comments.some((c) => c.id === comment.id)) return false;
  message.comments.push(comment);
  return true;
}

function markRead(chat) {
  const last = chat.messages[chat.messages.length - 1];
  if (!last || document.visibilityState !== 'visible' || state.lastRead.get(chat.id) === last.id) return;
  state.lastRead.set(chat.id, last.id);
  api.post('/read', { chat: chat.id, up_to: last.id }).catch(() => state.lastRead.delete(chat.id));
}

// -- messages ---------------------------------------------------------------------------

const rendered = new Map(); // message id -> its element (kept across renders)
const previews = new Map(); // file id -> Promise of a blob: URL

// While the list is scrolled to its end it stays there, whatever arrives or grows (a new
// message, a preview loading, the banner taking room); scrolled up, it stays put.
let stick = true;

function keepAtBottom() {
  const list = $('#messages');
  if (stick) list.scrollTop = list.scrollHeight;
}

function renderMessages({ bottom = false } = {}) {
  const list = $('#messages');
  const chat = state.chats.get(state.current);
  if (!chat) return;
  if (bottom) stick = true;
  const items = chat.messages.map(messageElement);
  const older = chat.more
    ? h('li', { className: 'older' }, h('button', { type: 'button', onclick: () => loadOlder(chat) }, 'Load older messages'))
    : null;
  const empty = chat.loaded && !chat.messages.length
    ? h('li', { className: 'empty' }, 'No messages yet. Say hello!')
    : null;
  fill(list, older, empty, items);
  keepAtBottom();
}

async function loadOlder(chat) {
  const list = $('#messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  try {
    await loadPage(chat, chat.messages[0] && chat.messages[0].id);
  } catch (e) {
    toast(e.message, true);
  }
  if (state.current !== chat.id) return;
  stick = false;
  renderMessages();
  list.scrollTop = list.scrollHeight - fromBottom;
}

function messageElement(message) {
  let el = rendered.get(message.id);
  if (el) return el;
  const files = message.files.map((file) => {
    const preview = PREVIEWED.has(file.content_type) && file.size <= PREVIEW_MAX;
    const img = preview ? h('img', { alt: file.name, className: 'preview', onload: keepAtBottom }) : null;
    if (img) showPreview(file, img);
    return h('li', { className: 'file' },
      img,
      h('button', {
        type: 'button',
        className: 'download',
        'aria-label': `Download ${file.name}, ${formatSize(file.size)}`,
        onclick: () => download(file),
      }, h('span', { className: 'file-name' }, file.name), ` (${formatSize(file.size)})`));
  });
  const actions = h('div', { className: 'actions' },
    h('button', { type: 'button', className: 'link', onclick: () => toggleComment(el, message) }, 'Comment'),
    isMe(message.author) ? null
      : h('button', { type: 'button', className: 'link', onclick: () => reportPanel(message.author) }, `Report ${message.author}`));
  el = h('li', {
    className: `message${isMe(message.author) ? ' mine' : ''}`,
    dataset: { id: message.id },
  },
  h('div', { className: 'meta' },
    h('span', { className: 'author' }, message.author),
    ' ', timeEl(message.sent_at),
    message.scheduled_at ? h('span', { className: 'tag' }, 'scheduled') : null),
  message.text ? h('p', { className: 'text' }, message.text) : null,
  files.length ? h('ul', { className: 'files' }, files) : null,
  h('ul', { className: 'comments', 'aria-label': 'Comments' }),
  actions);
  rendered.set(message.id, el);
  renderComments(message);
  return el;
}

function renderComments(message) {
  const el = rendered.get(message.id);
  if (!el) return;
  fill(el.querySelector('.comments'), message.comments.map((c) => h('li', { className: 'comment', dataset: { id: c.id } },
    h('span', { className: 'author' }, c.author), ' ',
    h('span', { className: 'text' }, c.text), ' ',
    timeEl(c.sent_at))));
}

function toggleComment(el, message) {
  const open = el.querySelector('form.comment-form');
  if (open) {
    open.remove();
    return;
  }
  const input = h('input', {
    name: 'text', maxlength: 4096, required: true, autocomplete: 'off',
    'aria-label': `Comment on ${message.author}'s message`, placeholder: 'Write a comment',
  });
  const error = h('p', { className: 'error', role: 'alert' });
  const form = h('form', {
    className: 'comment-form',
    onsubmit: async (event) => {
      event.preventDefault();
      if (!input.value.trim()) return;
      try {
        const { comment } = await api.post('/comment', {
          message_id: message.id, text: input.value, client_id: newId(),
        });
        if (addCommentTo(message, comment)) renderComments(message);
        form.remove();
      } catch (e) {
        error.textContent = e.message;
        noteRefusal(e);
      }
    },
    onkeydown: (event) => { if (event.key === 'Escape') form.remove(); },
  }, input, h('button', { type: 'submit' }, 'Send'), error);
  el.querySelector('.actions').after(form);
  input.focus();
}

function showPreview(file, img) {
  if (!previews.has(file.id)) {
    previews.set(file.id, api.download(file.id).then((blob) => URL.createObjectURL(blob)));
  }
  previews.get(file.id).then((url) => { img.src = url; }, () => img.remove());
}

async function download(file) {
  try {
    saveBlob(await api.download(file.id), file.name);
  } catch (e) {
    toast(e.message, true);
  }
}

function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// -- writing ----------------------------------------------------------------------------

let lastAttempt = null; // {body, id}: a retry of the very same message reuses its client_id

async function send(event) {
  event.preventDefault();
  const chat = state.chats.get(state.current);
  const textarea = $('#text');
  const error = $('#composer-error');
  if (!chat || $('#send').disabled) return;
  error.textContent = '';
  if (state.pending.some((p) => p.error)) {
    error.textContent = 'Remove the attachments that failed first.';
    return;
  }
  if (!textarea.value.trim() && !state.pending.length) return;
  $('#send').disabled = true;
  try {
    const records = await Promise.all(state.pending.map((p) => p.done));
    const body = { text: textarea.value };
    if (chat.kind === 'dm') body.to = chat.peer;
    else body.chat = chat.id;
    if (records.length) body.files = records.map((r) => r.id);
    const when = $('#when').hidden ? '' : $('#send-at').value;
    if (when) body.send_at = new Date(when).toISOString();
    const same = lastAttempt && JSON.stringify(lastAttempt.body) === JSON.stringify(body);
    lastAttempt = { body, id: same ? lastAttempt.id : newId() };
    const { status, data, headers } = await api.call('POST', '/send', {
      body: { ...body, client_id: lastAttempt.id },
    });
    lastAttempt = null;
    textarea.value = '';
    later(false);
    state.pending = [];
    renderAttachments();
    if (status === 202) {
      toast(`Scheduled for ${formatTime(data.scheduled.send_at)}.`);
    } else {
      if (addMessage(data.message) && state.current === chat.id) renderMessages({ bottom: true });
      rateFromHeaders(headers);
      markRead(chat);
      renderChatList();
    }
  } catch (e) {
    error.textContent = e.message;
    noteRefusal(e);
  } finally {
    renderLimits();
  }
}

/** A refusal that tells us about our ban or the rate limit: show it from now on. */
function noteRefusal(e) {
  if (e.code === 'banned' && e.extra.banned_until) {
    state.status.banned_until = e.extra.banned_until;
  } else if (e.code === 'rate_limited') {
    const rate = state.status.rate_limit;
    rate.remaining = 0;
    rate.reset_at = new Date(Date.now() + (e.extra.retry_after || 1) * 1000).toISOString();
  }
  renderLimits();
}

function rateFromHeaders(headers) {
  const remaining = headers.get('X-RateLimit-Remaining');
  if (remaining === null) return;
  const reset = Number(headers.get('X-RateLimit-Reset'));
  state.status.rate_limit = {
    limit: Number(headers.get('X-RateLimit-Limit')),
    remaining: Number(remaining),
    reset_at: reset ? new Date(Date.now() + reset * 1000).toISOString() : null,
  };
}

/** Show or hide the time to send at; the Send button says what it will do. */
function later(open) {
  $('#when').hidden = !open;
  $('#later').setAttribute('aria-expanded', String(open));
  if (open) {
    const input = $('#send-at');
    if (!input.value) {
      // In a few minutes, local time, as the input wants it: 2026-11-30T18:05
      const soon = new Date(Date.now() + 5 * 60_000 - new Date().getTimezoneOffset() * 60_000);
      input.value = soon.toISOString().slice(0, 16);
    }
    input.focus();
  } else {
    $('#send-at').value = '';
  }
  $('#send').textContent = open ? 'Schedule' : 'Send';
}

function chooseFiles(event) {
  for (const file of event.target.files) {
    const progress = h('progress', { max: file.size || 1, value: 0, 'aria-label': `Uploading ${file.name}` });
    const item = { file, progress, error: null, record: null };
    const upload = api.upload(file, (sent, total) => {
      progress.max = total || 1;
      progress.value = sent;
    });
    item.abort = upload.abort;
    item.done = upload.promise.then(
      (record) => {
        item.record = record;
        progress.value = progress.max;
        renderAttachments();
        return record;
      },
      (e) => {
        item.error = e.message;
        renderAttachments();
        throw e;
      },
    );
    item.done.catch(() => {}); // reported in the list; send refuses while it is there
    state.pending.push(item);
  }
  event.target.value = '';
  renderAttachments();
}

function renderAttachments() {
  fill($('#attachments'), state.pending.map((item) => h('li', { className: item.error ? 'failed' : '' },
    h('span', { className: 'file-name' }, item.file.name),
    ` ${formatSize(item.file.size)} `,
    item.error ? h('span', { className: 'error' }, item.error)
      : item.record ? h('span', { className: 'ready' }, 'ready') : item.progress,
    h('button', {
      type: 'button',
      className: 'link',
      'aria-label': `Remove ${item.file.name}`,
      onclick: () => {
        if (!item.record && !item.error) item.abort();
        state.pending = state.pending.filter((p) => p !== item);
        renderAttachments();
      },
    }, 'Remove'))));
}

// -- limits: the ban and the rate limit, shown before they refuse anything ---------------

let limitsTimer = null;

function applyStatus(status) {
  state.status = { rate_limit: status.rate_limit, banned_until: status.banned_until };
  renderLimits();
}

async function refreshStatus() {
  try {
    applyStatus(await api.get('/status'));
  } catch {
    // shown again at the next change
  }
}

function renderLimits() {
  clearTimeout(limitsTimer);
  const now = Date.now();
  const banner = $('#banner');
  const limits = $('#limits');
  const banned = state.status.banned_until && Date.parse(state.status.banned_until) > now;
  const chat = state.chats.get(state.current);
  const rate = state.status.rate_limit;
  const counted = chat && chat.kind === 'general' && rate.limit !== null;
  const resetAt = rate.reset_at && Date.parse(rate.reset_at);
  const spent = counted && rate.remaining === 0 && resetAt > now;
  banner.hidden = !banned;
  document.body.classList.toggle('banned', Boolean(banned));
  if (banned) {
    banner.textContent = `Other users reported you: you cannot send messages or comments until ${formatTime(state.status.banned_until)}. You can still read.`;
  }
  if (!counted) {
    limits.textContent = '';
  } else if (spent) {
    limits.textContent = `You have sent ${rate.limit} messages to the common chat: you can send again at ${formatTime(rate.reset_at)}.`;
  } else {
    const left = resetAt > now ? rate.remaining : rate.limit;
    limits.textContent = `${left} of ${rate.limit} common-chat messages left`
      + (resetAt > now ? `; the count starts again at ${formatTime(rate.reset_at)}.` : '.');
  }
  limits.classList.toggle('warn', Boolean(spent) || (counted && rate.remaining !== null && rate.remaining <= 3 && resetAt > now));
  $('#send').disabled = Boolean(banned) || Boolean(spent);
  $('#text').placeholder = banned ? 'You cannot send while banned'
    : spent ? 'Rate limit reached' : `Message ${chat ? chatTitle(chat) : ''}`;
  // Wake when a limit lifts, to say so without waiting for a click.
  const next = [banned ? Date.parse(state.status.banned_until) : null, resetAt > now ? resetAt : null]
    .filter(Boolean);
  if (next.length) {
    const wait = Math.min(...next) - now + 500;
    limitsTimer = setTimeout(() => (banned ? refreshStatus() : renderLimits()), Math.min(wait, 2 ** 31 - 1));
  }
}

// -- live events ------------------------------------------------------------------------

function handleEvent(event) {
  switch (event.type) {
    case 'message': return onMessage(event.message);
    case 'comment': return onComment(event.comment);
    case 'banned':
      state.status.banned_until = event.until;
      return renderLimits();
    case 'unbanned':
      state.status.banned_until = null;
      return renderLimits();
    case 'read': return onRead(event);
    case 'scheduled_failed':
      toast(`A scheduled message was not sent: ${event.error.message}`, true);
      if (panelOpen('scheduled')) scheduledPanel();
      return undefined;
    case 'join_request': {
      const room = state.rooms.get(event.room);
      chatFor(event.room).requests += 1;
      toast(`${event.username} asks to join ${room ? room.name : 'your room'}.`);
      renderChatList();
      if (panelOpen(`room:${event.room}`)) roomPanel(event.room);
      return undefined;
    }
    case 'room_joined': return onRoomJoined(event);
    case 'join_refused':
      toast('Your request to join a room was refused.');
      return undefined;
    case 'room_left': return onRoomLeft(event);
    default: return undefined;
  }
}

function onMessage(message) {
  if (!addMessage(message)) return;
  const chat = state.chats.get(message.chat);
  const visible = chat.id === state.current && document.visibilityState === 'visible';
  if (!isMe(message.author) && !visible) chat.unread += 1;
  if (chat.id === state.current) {
    renderMessages();
    markRead(chat);
  }
  if (isMe(message.author) && chat.kind === 'general') refreshSoon();
  renderChatList();
}

let statusSoon = null;
function refreshSoon() {
  // Our own message from another device: the rate limit moved there.
  clearTimeout(statusSoon);
  statusSoon = setTimeout(refreshStatus, 1000);
}

function onComment(comment) {
  const chat = state.chats.get(state.where.get(comment.message_id));
  const message = chat && chat.byId.get(comment.message_id);
  if (message && addCommentTo(message, comment)) renderComments(message);
}

function onRead(event) {
  // Another device of ours read this chat up to a message.
  const chat = chatFor(event.chat);
  const at = chat.messages.findIndex((m) => m.id === event.up_to);
  chat.unread = at < 0 ? 0 : chat.messages.slice(at + 1).filter((m) => !isMe(m.author)).length;
  state.lastRead.set(chat.id, event.up_to);
  renderChatList();
}

function onRoomJoined(event) {
  const room = event.room;
  const had = state.rooms.has(room.id);
  state.rooms.set(room.id, room);
  chatFor(room.id);
  if (!had && isMe(event.username)) toast(`You are now a member of ${room.name}.`);
  renderChatList();
  if (state.current === room.id) $('#chat-title').textContent = room.name;
  if (panelOpen(`room:${room.id}`)) roomPanel(room.id);
}

function onRoomLeft(event) {
  const room = state.rooms.get(event.room);
  if (!room) return;
  if (isMe(event.username)) {
    state.rooms.delete(event.room);
    state.chats.delete(event.room);
    toast(`You are no longer in ${room.name}.`);
    if (panelOpen(`room:${event.room}`)) closePanel();
    if (state.current === event.room) openChat(GENERAL, { focus: false });
  } else {
    room.members = room.members.filter((m) => key(m) !== key(event.username));
    if (panelOpen(`room:${event.room}`)) roomPanel(event.room);
  }
  renderChatList();
}

export function forgetRoom(id) {
  onRoomLeft({ room: id, username: state.me });
}

export function showRoom(room) {
  state.rooms.set(room.id, room);
  chatFor(room.id);
  renderChatList();
  if (state.current === room.id) $('#chat-title').textContent = room.name;
}

function showConnection(what) {
  const conn = $('#conn');
  conn.dataset.state = what;
  conn.textContent = { live: 'live', reconnecting: 'reconnecting…', connecting: 'connecting…' }[what];
}

// -- notices ----------------------------------------------------------------------------

let toastTimer = null;
export function toast(text, bad = false) {
  const el = $('#toast');
  el.textContent = text;
  el.classList.toggle('bad', bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

// -- sidebar forms ----------------------------------------------------------------------

async function openPrivate(event) {
  event.preventDefault();
  const input = event.target.elements.name;
  const name = input.value.trim();
  if (!name) return;
  if (isMe(name)) {
    toast('That is you: pick someone else.', true);
    return;
  }
  const id = dmId(state.me, name);
  const known = state.chats.has(id);
  const chat = chatFor(id);
  if (!known) chat.peer = name; // as typed, until a message shows how its owner spells it
  try {
    await loadPage(chat);
  } catch (e) {
    if (!known) state.chats.delete(id);
    toast(e.code === 'user_not_found' ? `There is no user called ${name}.` : e.message, true);
    return;
  }
  input.value = '';
  renderChatList();
  openChat(id);
}

async function createRoom(event) {
  event.preventDefault();
  const input = event.target.elements.name;
  if (!input.value.trim()) return;
  try {
    const { room } = await api.post('/rooms', { name: input.value.trim() });
    input.value = '';
    showRoom(room);
    openChat(room.id);
  } catch (e) {
    toast(e.message, true);
  }
}

async function join(event) {
  event.preventDefault();
  const input = event.target.elements.token;
  const token = input.value.trim();
  if (!token) return;
  try {
    const { request } = await api.post('/join', { token });
    input.value = '';
    toast(`You asked to join ${request.name}. Its owner decides.`);
  } catch (e) {
    toast(e.code === 'link_not_found' ? 'That link does not work: it may have expired or been used up.' : e.message, true);
  }
}

// -- wiring -----------------------------------------------------------------------------

function wire() {
  wirePanel();
  $('#login-form').addEventListener('submit', login);
  $('#composer').addEventListener('submit', send);
  const list = $('#messages');
  list.addEventListener('scroll', () => {
    stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  });
  new ResizeObserver(keepAtBottom).observe(list);
  $('#text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('#composer').requestSubmit();
    }
  });
  $('#attach').addEventListener('click', () => $('#file-input').click());
  $('#file-input').addEventListener('change', chooseFiles);
  $('#later').addEventListener('click', () => later($('#when').hidden));
  $('#not-later').addEventListener('click', () => {
    later(false);
    $('#text').focus();
  });
  $('#dm-form').addEventListener('submit', openPrivate);
  $('#room-form').addEventListener('submit', createRoom);
  $('#join-form').addEventListener('submit', join);
  $('#logout').addEventListener('click', logout);
  $('#open-sessions').addEventListener('click', sessionsPanel);
  $('#open-scheduled').addEventListener('click', scheduledPanel);
  $('#room-info').addEventListener('click', () => roomPanel(state.current));
  $('#toast').addEventListener('click', (event) => { event.currentTarget.hidden = true; });
  $('#back').addEventListener('click', () => {
    document.body.classList.remove('show-chat');
    const current = document.querySelector('.chat-item[aria-current="true"]');
    if (current) current.focus();
  });
  document.addEventListener('visibilitychange', () => {
    const chat = state.chats.get(state.current);
    if (chat && document.visibilityState === 'visible') {
      chat.unread = 0;
      markRead(chat);
      renderChatList();
    }
  });
}

wire();
if (sessionStorage.getItem(STORE.token)) {
  start();
} else {
  showLogin(location.pathname.startsWith('/join/') ? 'Sign in to ask to join the room you were invited to.' : '');
}
