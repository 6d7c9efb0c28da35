// The dialogs: sessions, scheduled messages, a room's members, links and requests, a
// report, and joining through a link. One <dialog> shows one panel at a time; Escape or
// the close button closes it and focus goes back where it was.
//
// This module and app.js import each other: each only calls the other from functions run
// after both are loaded (ES modules allow that).

import { api, chatFor, chatTitle, forgetRoom, isMe, showRoom, state, toast } from './app.js';
import { $, fill, h, timeEl } from './dom.js';

let shown = null; // the open panel's name ('sessions', 'room:<id>', ...)

export function wirePanel() {
  $('#panel-close').addEventListener('click', closePanel);
  $('#panel').addEventListener('close', () => { shown = null; });
}

export function panelOpen(name) {
  return shown === name && $('#panel').open;
}

export function openPanel(name, title, ...content) {
  const dialog = $('#panel');
  shown = name;
  $('#panel-title').textContent = title;
  fill($('#panel-body'), ...content);
  if (!dialog.open) dialog.showModal();
}

export function closePanel() {
  const dialog = $('#panel');
  if (dialog.open) dialog.close();
  shown = null;
}

function errorLine() {
  return h('p', { className: 'error', role: 'alert' });
}

/** A button that runs an API call, shows its refusal in `error`, and is off meanwhile. */
function action(label, run, error, attrs = {}) {
  const button = h('button', {
    type: 'button',
    ...attrs,
    onclick: async () => {
      button.disabled = true;
      error.textContent = '';
      try {
        await run();
      } catch (e) {
        error.textContent = e.message;
      } finally {
        button.disabled = false;
      }
    },
  }, label);
  return button;
}

// -- sessions ---------------------------------------------------------------------------

export async function sessionsPanel() {
  const error = errorLine();
  let sessions;
  try {
    ({ sessions } = await api.get('/sessions'));
  } catch (e) {
    toast(e.message, true);
    return;
  }
  openPanel('sessions', 'Your sessions',
    h('p', { className: 'note' }, 'Every sign-in is a session. Ending one signs that device out at once.'),
    h('ul', { className: 'rows' }, sessions.map((s) => h('li', {},
      h('div', {},
        h('strong', {}, s.device), s.current ? h('span', { className: 'tag' }, 'this tab') : null,
        h('div', { className: 'note' }, 'since ', timeEl(s.created_at), ', last seen ', timeEl(s.last_seen_at))),
      action(s.current ? 'Sign out' : 'End session', async () => {
        await api.delete(`/sessions/${encodeURIComponent(s.id)}`);
        if (!s.current) sessionsPanel();
        // this tab's own session: the next call or the event stream signs us out
        else await api.get('/status');
      }, error, { className: s.current ? 'secondary' : 'danger', 'aria-label': `End session ${s.device}${s.current ? ' (this tab)' : ''}` })))),
    error);
}

// -- scheduled messages -----------------------------------------------------------------

export async function scheduledPanel() {
  const error = errorLine();
  let scheduled;
  try {
    ({ scheduled } = await api.get('/scheduled'));
  } catch (e) {
    toast(e.message, true);
    return;
  }
  openPanel('scheduled', 'Scheduled messages',
    scheduled.length ? null : h('p', { className: 'note' },
      'Nothing is scheduled. To schedule a message, set "Send at" below the message box.'),
    h('ul', { className: 'rows' }, scheduled.map((s) => h('li', {},
      h('div', {},
        h('strong', {}, timeEl(s.send_at)), ' to ', chatTitle(chatFor(s.chat)),
        h('p', { className: 'text' }, s.text || `${s.files.length} file(s)`)),
      action('Cancel', async () => {
        await api.delete(`/scheduled/${encodeURIComponent(s.id)}`);
        scheduledPanel();
      }, error, { className: 'danger', 'aria-label': `Cancel the message scheduled for ${new Date(s.send_at).toLocaleString()}` })))),
    error);
}

// -- report -----------------------------------------------------------------------------

export function reportPanel(username) {
  const error = errorLine();
  const reason = h('input', { name: 'reason', maxlength: 500, autocomplete: 'off', id: 'report-reason' });
  openPanel('report', `Report ${username}?`,
    h('p', { className: 'note' }, 'A user reported by several people cannot send for a while.'),
    h('label', { for: 'report-reason' }, 'Reason (optional)'), reason,
    h('div', { className: 'row' },
      action('Report', async () => {
        const body = { username };
        if (reason.value.trim()) body.reason = reason.value.trim();
        const result = await api.post('/report', body);
        closePanel();
        toast(result.banned_until
          ? `${username} is now banned from sending.`
          : `Reported ${username} (${result.reports} of ${result.threshold} reports).`);
      }, error, { className: 'danger' }),
      h('button', { type: 'button', className: 'secondary', onclick: closePanel }, 'Cancel')),
    error);
  reason.focus();
}

// -- joining through a link -------------------------------------------------------------

export function joinPanel(token) {
  const error = errorLine();
  openPanel('join', 'Join a room',
    h('p', {}, 'You opened an invitation to a room. Its owner decides whether you join.'),
    h('div', { className: 'row' },
      action('Ask to join', async () => {
        const { request } = await api.post('/join', { token });
        closePanel();
        toast(`You asked to join ${request.name}. Its owner decides.`);
      }, error),
      h('button', { type: 'button', className: 'secondary', onclick: closePanel }, 'Not now')),
    error);
}

// -- a room -----------------------------------------------------------------------------

export async function roomPanel(roomId) {
  const path = `/rooms/${encodeURIComponent(roomId)}`;
  let room;
  let requests = [];
  let links = [];
  try {
    const shown = await api.get(path);
    room = shown.room;
    requests = shown.requests || [];
    if (isMe(room.owner)) ({ links } = await api.get(`${path}/links`));
  } catch (e) {
    toast(e.message, true);
    return;
  }
  const owner = isMe(room.owner);
  chatFor(roomId).requests = requests.length;
  showRoom(room);
  const error = errorLine();
  const again = () => roomPanel(roomId);
  const sections = [
    h('h3', {}, `Members (${room.members.length})`),
    h('ul', { className: 'rows' }, room.members.map((name) => h('li', {},
      h('span', {}, name, isMe(name) ? ' (you)' : '', name === room.owner ? h('span', { className: 'tag' }, 'owner') : null),
      owner && !isMe(name)
        ? action('Remove', async () => { await api.delete(`${path}/members/${encodeURIComponent(name)}`); again(); },
          error, { className: 'danger', 'aria-label': `Remove ${name}` })
        : null))),
  ];
  if (owner) {
    const requestRows = requests.map((r) => h('li', {},
      h('span', {}, h('strong', {}, r.username), ' asked ', timeEl(r.requested_at)),
      h('span', { className: 'row' },
        action('Approve', async () => {
          await api.post(`${path}/requests/${encodeURIComponent(r.username)}`, { approve: true });
          again();
        }, error, { 'aria-label': `Approve ${r.username}` }),
        action('Refuse', async () => {
          await api.post(`${path}/requests/${encodeURIComponent(r.username)}`, { approve: false });
          again();
        }, error, { className: 'secondary', 'aria-label': `Refuse ${r.username}` }))));
    const member = h('input', { name: 'username', autocomplete: 'off', 'aria-label': 'Username to add', placeholder: 'username' });
    const linkOut = h('div', { className: 'link-out' });
    sections.push(
      h('h3', {}, 'Asking to join'),
      requestRows.length ? h('ul', { className: 'rows requests' }, requestRows)
        : h('p', { className: 'note' }, 'No one is waiting.'),
      h('h3', {}, 'Add a member'),
      h('form', {
        className: 'row',
        onsubmit: async (event) => {
          event.preventDefault();
          if (!member.value.trim()) return;
          try {
            await api.post(`${path}/members`, { username: member.value.trim() });
            again();
          } catch (e) {
            error.textContent = e.message;
          }
        },
      }, member, h('button', { type: 'submit' }, 'Add')),
      h('h3', {}, 'Invite links'),
      h('p', { className: 'note' }, 'Whoever opens a link asks to join; you approve or refuse. A link lasts 7 days.'),
      action('Create a link', async () => {
        const { link } = await api.post(`${path}/links`, {});
        const field = h('input', { readonly: true, value: link.url, 'aria-label': 'Invite link', className: 'link-url' });
        fill(linkOut, field, h('button', {
          type: 'button',
          onclick: async () => {
            field.select();
            try {
              await navigator.clipboard.writeText(link.url);
              toast('Link copied.');
            } catch {
              toast('Select the link and copy it.');
            }
          },
        }, 'Copy'));
        field.select();
      }, error),
      linkOut,
      links.length ? h('ul', { className: 'rows' }, links.map((lk) => h('li', {},
        h('span', { className: 'note' }, 'A link until ', timeEl(lk.expires_at),
          lk.uses_left === null ? '' : `, ${lk.uses_left} uses left`),
        action('Revoke', async () => { await api.delete(`${path}/links/${encodeURIComponent(lk.id)}`); again(); },
          error, { className: 'danger' })))) : null,
      h('h3', {}, 'Delete the room'),
      action('Delete room', async () => {
        await api.delete(path);
        closePanel();
        forgetRoom(roomId);
      }, error, { className: 'danger' }),
    );
  } else {
    sections.push(action('Leave room', async () => {
      await api.delete(`${path}/members/${encodeURIComponent(state.me)}`);
      closePanel();
      forgetRoom(roomId);
    }, error, { className: 'danger' }));
  }
  openPanel(`room:${roomId}`, room.name, ...sections, error);
}
