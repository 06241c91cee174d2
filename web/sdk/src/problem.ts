/** One offending field of a validation failure. */
export interface FieldError {
  location?: string;
  message: string;
  value?: unknown;
}

/**
 * An RFC 9457 problem document (REST) or an `error` frame (WebSocket) as an Error.
 * `message` is the detail, or the title when there is no detail.
 * Errors that never reached the server use status 0 and codes `network_error`, `timeout`,
 * `disconnected`, `closed`.
 */
export class ProblemError extends Error {
  status: number;
  code: string;
  title: string;
  detail: string;
  errors?: FieldError[];
  /** The whole problem document as received (extra members such as existing_id, request_id). */
  problem: Record<string, unknown>;

  constructor(p: { status: number; code: string; title?: string; detail?: string; errors?: FieldError[] | null } & Record<string, unknown>) {
    const title = p.title ?? '';
    const detail = p.detail ?? '';
    super(detail || title || p.code);
    this.name = 'ProblemError';
    this.status = p.status;
    this.code = p.code;
    this.title = title;
    this.detail = detail;
    if (p.errors) this.errors = p.errors;
    this.problem = { ...p };
  }

  /** Builds the error from a failed response, whatever its body. */
  static async fromResponse(res: Response): Promise<ProblemError> {
    let body: unknown = null;
    const text = await res.text().catch(() => '');
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (body && typeof body === 'object' && typeof (body as { code?: unknown }).code === 'string') {
      const b = body as Record<string, unknown>;
      const status = b['status'];
      return new ProblemError({ ...b, status: typeof status === 'number' ? status : res.status, code: b['code'] as string });
    }
    return new ProblemError({
      status: res.status,
      code: `http_${res.status}`,
      title: res.statusText || `HTTP ${res.status}`,
      detail: text.slice(0, 200),
    });
  }
}
