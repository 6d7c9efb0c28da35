// Live updates: GET /events read with fetch streaming, so the bearer token travels in a
// header (EventSource cannot send one). After a drop it reconnects with Last-Event-ID set to
// the last cursor handled: the server then sends exactly what was missed, nothing twice.

const FIRST_DELAY = 500; // ms before the first retry; doubles up to MAX_DELAY
const MAX_DELAY = 10_000;
// The server writes at least a keep-alive comment every 15 s: a silent stream is dead.
const SILENCE = 35_000;

export class EventStream {
  /**
   * onEvent(event) for each event, in order; onState('live' | 'reconnecting');
   * onUnauthorized() when the token no longer works (the stream then stops).
   */
  constructor(api, { onEvent, onState, onUnauthorized }) {
    this.api = api;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.cursor = null;
    // The running loop's handle: {active, abort(), wake()}. A new start() gets a new one, so
    // a loop from before a sign-out can never carry on beside the new one.
    this.run = null;
    window.addEventListener('online', () => this.run && this.run.wake());
  }

  start(cursor) {
    this.stop();
    this.cursor = cursor;
    this.run = { active: true, abort: () => {}, wake: () => {} };
    this.loop(this.run);
  }

  stop() {
    if (!this.run) return;
    this.run.active = false;
    this.run.abort();
    this.run.wake();
    this.run = null;
  }

  async loop(run) {
    let delay = FIRST_DELAY;
    while (run.active) {
      const controller = new AbortController();
      run.abort = () => controller.abort();
      try {
        const headers = this.api.headers({ Accept: 'text/event-stream' });
        if (this.cursor !== null) headers['Last-Event-ID'] = this.cursor;
        const response = await fetch('/events', {
          headers, signal: controller.signal, cache: 'no-store',
        });
        if (response.status === 401) {
          run.active = false;
          this.onUnauthorized();
          return;
        }
        if (response.status === 400) {
          // A cursor this server never issued (its data was reset): start from now.
          this.cursor = null;
        } else if (response.ok) {
          this.onState('live');
          delay = FIRST_DELAY;
          await this.read(response.body, controller, run);
        }
      } catch {
        // a network failure, or our own abort: both end in a retry unless stopped
      }
      if (!run.active) return;
      this.onState('reconnecting');
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay * (0.75 + Math.random() / 2));
        run.wake = () => { clearTimeout(timer); resolve(); };
      });
      run.wake = () => {};
      delay = Math.min(delay * 2, MAX_DELAY);
    }
  }

  async read(body, controller, run) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let watchdog = setTimeout(() => controller.abort(), SILENCE);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), SILENCE);
        buffer += value;
        let end;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
          if (!run.active) return;
          this.frame(frame);
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  frame(text) {
    let id = null;
    const data = [];
    for (const line of text.split(/\r?\n/)) {
      if (!line || line.startsWith(':')) continue; // a comment: keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) {
      let event = null;
      try {
        event = JSON.parse(data.join('\n'));
      } catch {
        console.warn('trio-chat: an event that is not JSON was skipped');
      }
      if (event) this.onEvent(event);
    }
    if (id !== null) this.cursor = id; // after handling: a drop mid-event replays it
  }
}
