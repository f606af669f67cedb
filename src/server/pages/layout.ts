// The small server-rendered pages' frame: escaping, the layout, the stylesheet and the strict
// CSP they are served with (no script at all, styles only from /assets/coffer.css, forms
// only to this origin). A later web UI takes these pages over.

/** The CSP of every page. */
export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/** Where the pages' stylesheet is served. */
export const PAGE_CSS_PATH = '/assets/coffer.css'

/** HTML-escapes text for element content and quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

/** An HTML fragment that is already safe (built with `esc`); plain strings passed to `html` are escaped. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

/** Tagged template: interpolated strings are escaped, Html fragments and arrays of them are inserted as they are. */
export function html(strings: TemplateStringsArray, ...values: Array<string | number | Html | Html[] | null | undefined | false>): Html {
  let out = strings[0]!
  values.forEach((v, i) => {
    if (v instanceof Html) out += v.value
    else if (Array.isArray(v)) out += v.map((x) => x.value).join('')
    else if (v !== null && v !== undefined && v !== false) out += esc(String(v))
    out += strings[i + 1]!
  })
  return new Html(out)
}

/** The hidden field that carries the session's CSRF token in a form. */
export function csrfField(token: string): Html {
  return html`<input type="hidden" name="_csrf" value="${token}">`
}

/** Plain words for the error codes a page may be sent back with. */
const ERROR_TEXT: Record<string, string> = {
  ERR_INVALID_CREDENTIALS: 'The email or password is wrong.',
  ERR_EMAIL_NOT_VERIFIED: 'Verify your email address first: open the link we mailed you.',
  ERR_INVALID_LINK: 'This link is invalid, expired or already used. Ask for a new one.',
  ERR_VALIDATION: 'Please check the form: a field is missing or invalid (passwords need at least 12 characters).',
  ERR_AUTH_METHOD_DISABLED: 'This sign-in method is turned off on this server.',
  ERR_PASSWORD_NOT_SET: 'This account has no password: sign in with SSO.',
  ERR_LAST_OWNER: 'You are the last Owner of a workspace: make someone else Owner first.',
  ERR_OIDC_STATE: 'The sign-in could not be matched to this browser. Please start again.',
  ERR_OIDC_FAILED: 'Sign-in with the identity provider failed. Please start again.',
  ERR_OIDC_EMAIL_REFUSED: 'Your email address is not allowed to sign in here.',
  ERR_UNAUTHENTICATED: 'Please sign in.',
  ERR_RATE_LIMITED: 'Too many attempts. Please wait a little and try again.',
  ERR_NOT_FOUND: 'That was not found.',
  ERR_ACCOUNT_EXISTS: 'An account with this email address exists: sign in with it, then open the invitation link again.',
  ERR_INVITATION_WRONG_ACCOUNT: 'This invitation was sent to another email address: use the address it was sent to.',
}

const NOTICE_TEXT: Record<string, string> = {
  'check-mail': 'If the address can receive mail from us, a message is on its way. Check your inbox.',
  'signed-out': 'You are signed out.',
  'signed-out-everywhere': 'Every session of your account has ended.',
  'password-reset': 'Your password is set. Sign in with it.',
  'email-verified': 'Your email address is verified. Sign in.',
  'password-changed': 'Your password is changed; your other sessions have ended.',
  'session-ended': 'The session has ended.',
  'account-deleted': 'Your account is deleted.',
}

/** The message box for a page's `?error=` or `?notice=` (fixed texts only; the query is never echoed). */
export function messages(query: Record<string, unknown>): Html {
  const parts: Html[] = []
  if (typeof query.error === 'string')
    parts.push(
      html`<p class="msg error" role="alert">${ERROR_TEXT[query.error] ?? `Something went wrong (${query.error.slice(0, 40)}).`}</p>`,
    )
  if (typeof query.notice === 'string' && NOTICE_TEXT[query.notice])
    parts.push(html`<p class="msg notice">${NOTICE_TEXT[query.notice]!}</p>`)
  return html`${parts}`
}

/** A whole page: doctype, head with the stylesheet, and `body` inside the frame. */
export function renderPage(title: string, body: Html): string {
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${title} · Coffer</title><link rel="stylesheet" href="${PAGE_CSS_PATH}"></head><body><main><p class="brand">Coffer</p><h1>${title}</h1>${body}</main></body></html>`.value}`
}

/** The pages' stylesheet. */
export const PAGE_CSS = `*{box-sizing:border-box}body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}main{max-width:560px;margin:48px auto;padding:28px 32px;background:#fff;border:1px solid #e2e5ea;border-radius:10px}.brand{font-weight:700;letter-spacing:.04em;color:#5a6475;margin:0}h1{font-size:22px;margin:4px 0 20px}h2{font-size:16px;margin:28px 0 8px}label{display:block;margin:12px 0 4px;font-weight:600}input[type=email],input[type=password],input[type=text]{width:100%;padding:9px 10px;border:1px solid #c9ced6;border-radius:6px;font:inherit}button,.button{display:inline-block;margin-top:16px;padding:9px 16px;border:0;border-radius:6px;background:#2457c5;color:#fff;font:inherit;font-weight:600;text-decoration:none;cursor:pointer}.button.secondary,button.secondary{background:#e9edf3;color:#1d2330}button.danger{background:#b3261e}.msg{padding:10px 12px;border-radius:6px}.error{background:#fdecea;color:#8a1c14}.notice{background:#e8f3ea;color:#1e5b2a}.or{margin:20px 0 0;color:#5a6475}table{width:100%;border-collapse:collapse;font-size:14px}td,th{text-align:left;padding:6px 4px;border-bottom:1px solid #eceef2;vertical-align:top}form.inline{display:inline}form.inline button{margin:0;padding:4px 10px}small{color:#5a6475}nav a{margin-right:14px}`
