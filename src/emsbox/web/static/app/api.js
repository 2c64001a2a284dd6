// The REST API from the browser: JSON in and out, errors as ApiError with the server's words.

export class ApiError extends Error {
  constructor(status, detail, errors, retryAfter) {
    super(detail);
    this.status = status;
    this.errors = errors || {};
    this.retryAfter = retryAfter || 0;
  }
}

/** Call the API; resolves to the parsed JSON (or null), rejects with ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return send(path, init);
}

/** PUT a file as it is (the request's whole body); resolves to the JSON answer, rejects with ApiError. */
export async function upload(path, file, type = "application/octet-stream") {
  const init = {
    method: "PUT",
    headers: { Accept: "application/json", "Content-Type": type },
    credentials: "same-origin",
    body: file,
  };
  return send(path, init);
}

async function send(path, init) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, "network");
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
    const retry = Number(response.headers.get("Retry-After")) || 0;
    throw new ApiError(response.status, detail, data && data.errors, retry);
  }
  return data;
}
