// The HTTP API (docs/API.md), as the console client uses it: JSON over fetch with the
// bearer token in a header. Uploads use XMLHttpRequest, the one way to see their progress.

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra; // the error object's other fields: retry_after, banned_until, ...
  }
}

const NETWORK = 'The server cannot be reached. Check your connection and try again.';

export class Api {
  constructor(onUnauthorized) {
    this.token = null;
    this.onUnauthorized = onUnauthorized; // called once per 401 on an authenticated call
  }

  headers(extra = {}) {
    return this.token ? { Authorization: `Bearer ${this.token}`, ...extra } : extra;
  }

  /** One call; resolves to {status, data, headers} for a 2xx, else throws ApiError. */
  async call(method, path, { body, query, auth = true } = {}) {
    const url = query ? `${path}?${new URLSearchParams(query)}` : path;
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: auth ? this.headers(headers) : headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'network', NETWORK);
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw this.failure(response.status, data, auth);
    return { status: response.status, data, headers: response.headers };
  }

  failure(status, data, auth) {
    const error = (data && data.error) || {};
    const { code, message, ...extra } = error;
    const failure = new ApiError(status, code || `http_${status}`,
      message || `The server answered ${status}.`, extra);
    if (status === 401 && auth && this.token) this.onUnauthorized(failure);
    return failure;
  }

  async get(path, query) { return (await this.call('GET', path, { query })).data; }
  async post(path, body = {}) { return (await this.call('POST', path, { body })).data; }
  async delete(path) { return (await this.call('DELETE', path)).data; }

  /**
   * Upload a File; onProgress(sent, total) as it goes. Returns {promise, abort}; the promise
   * resolves to the file record ({id, name, size, content_type, sha256}).
   */
  upload(file, onProgress) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open('POST', `/files?${new URLSearchParams({ name: file.name || 'file' })}`);
      xhr.setRequestHeader('Authorization', `Bearer ${this.token}`);
      xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
      xhr.responseType = 'json';
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onload = () => {
        if (xhr.status === 201) resolve(xhr.response.file);
        else reject(this.failure(xhr.status, xhr.response, true));
      };
      xhr.onerror = () => reject(new ApiError(0, 'network', NETWORK));
      xhr.onabort = () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.'));
      xhr.send(file);
    });
    return { promise, abort: () => xhr.abort() };
  }

  /** A file's bytes, as a Blob. */
  async download(id) {
    let response;
    try {
      response = await fetch(`/files/${encodeURIComponent(id)}`, { headers: this.headers() });
    } catch {
      throw new ApiError(0, 'network', NETWORK);
    }
    if (!response.ok) throw this.failure(response.status, await response.json().catch(() => null), true);
    return response.blob();
  }
}
