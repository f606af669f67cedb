import { z } from 'zod'
import {
  type CliTokenGrant,
  cliTokenGrantResponse,
  deviceLoginBody,
  deviceLoginResponse,
  devicePollBody,
  loginCodeExchangeBody,
} from '../../api/cli-login.js'
import { CofferError, InternalError, NotFoundError, ValidationError } from '../../errors.js'
import {
  checkChallenge,
  checkLoopbackRedirect,
  cleanClientName,
  createLoginCode,
  decideDevice,
  issueCliToken,
  pollDevice,
  redeemLoginCode,
  startDeviceLogin,
  type CliGrant,
} from '../../identity/cli-login.js'
import type { Executor } from '../../storage/database.js'
import { defineAuthRoute, type AnyAuthRoute, type AuthHandlerResult } from '../auth-route.js'
import { findPersonWorkspace } from '../../identity/person-workspaces.js'
import { findAccount } from '../../identity/accounts.js'
import { findLiveWorkspace } from '../../vault/workspace-service.js'

// The CLI login's API (see src/identity/cli-login.ts for the flows). Approvals are account
// routes posted by the pages in cli-login-pages.ts (session cookie + CSRF); the exchanges
// are public JSON routes the CLI calls, limited like sign-ins.

/** The workspace `ref` (slug or id) of the person's memberships, else NotFound. */
async function ownWorkspace(db: Executor, userId: string, ref: string): Promise<{ id: string; slug: string; name: string }> {
  const w = await findPersonWorkspace(db, userId, ref)
  if (!w) throw new NotFoundError('workspace')
  return { id: w.id, slug: w.slug, name: w.name }
}

/** Issues the CLI token of a grant and the audit entry that records it. */
async function grantToken(db: Executor, grant: CliGrant, flow: 'browser' | 'device', now: Date): Promise<AuthHandlerResult<CliTokenGrant>> {
  const account = await findAccount(db, grant.userId)
  if (!account) throw new InternalError('a CLI login grant names no account')
  const user = { id: account.id, email: account.email }
  const live = await findLiveWorkspace(db, grant.workspaceId)
  if (!live) throw new NotFoundError('workspace')
  const ws = { id: live.id, slug: live.slug, name: live.name }
  const { token, info } = await issueCliToken(db, grant, now)
  return {
    body: { token, tokenId: info.id, expiresAt: info.expiresAt!, user, workspace: ws },
    audit: {
      action: 'token.create',
      target: { type: 'token', id: info.id },
      details: { name: info.name, kind: 'cli', flow, workspace: ws.id, expiresAt: info.expiresAt! },
    },
    auditUser: grant.userId,
  }
}

/** A refusal that must still commit (a spent code, a counted poll): no audit entry, the error after the commit. */
function refuse<R>(err: unknown, event: string): AuthHandlerResult<R> {
  if (!(err instanceof CofferError) || err instanceof NotFoundError) throw err
  return { body: undefined as R, audit: null, fail: err, unattributed: { event, reason: err.code } }
}

const approveLogin = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/cli/login/approve',
  summary: 'Approve or deny a CLI login (browser form)',
  tag: 'cli-login',
  action: 'cli.login.approve',
  mode: 'write',
  body: z.object({
    code_challenge: z.string().max(200),
    code_challenge_method: z.string().max(20),
    redirect_uri: z.string().max(300),
    state: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/),
    client: z.string().max(200).optional(),
    workspace: z.string().max(200).optional(),
    decision: z.enum(['approve', 'deny']),
  }),
  response: z.object({ redirect: z.string() }),
  form: { success: '/cli/done?result=approved', failure: '/cli/done' },
  async handler({ db, person, body, now }): Promise<AuthHandlerResult<{ redirect: string }>> {
    const redirectUri = checkLoopbackRedirect(body.redirect_uri)
    const challenge = checkChallenge(body.code_challenge, body.code_challenge_method)
    const clientName = cleanClientName(body.client)
    const back = new URL(redirectUri)
    back.searchParams.set('state', body.state)
    if (body.decision === 'deny') {
      back.searchParams.set('error', 'access_denied')
      return {
        body: { redirect: back.toString() },
        redirect: back.toString(),
        audit: { action: 'cli.login.deny', target: { type: 'user', id: person!.userId }, details: { client: clientName, flow: 'browser' } },
      }
    }
    if (!body.workspace) throw new ValidationError('Choose a workspace.')
    const ws = await ownWorkspace(db, person!.userId, body.workspace)
    const code = await createLoginCode(db, { userId: person!.userId, workspaceId: ws.id, challenge, redirectUri, clientName }, now)
    back.searchParams.set('code', code)
    return {
      body: { redirect: back.toString() },
      redirect: back.toString(),
      audit: {
        action: 'cli.login.approve',
        target: { type: 'user', id: person!.userId },
        details: { client: clientName, flow: 'browser', workspace: ws.id },
      },
    }
  },
})

const exchangeCode = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/cli/token',
  summary: 'Exchange a CLI login code and its PKCE verifier for a CLI token',
  tag: 'cli-login',
  action: 'public',
  mode: 'write',
  authRateLimit: { count: 'failures' },
  body: loginCodeExchangeBody,
  response: cliTokenGrantResponse,
  async handler({ db, body, now }) {
    let grant: CliGrant
    try {
      grant = await redeemLoginCode(db, { code: body.code, verifier: body.codeVerifier, redirectUri: body.redirectUri }, now)
    } catch (err) {
      return refuse<CliTokenGrant>(err, 'cli.login.exchange')
    }
    return grantToken(db, grant, 'browser', now)
  },
})

const startDevice = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/cli/device',
  summary: 'Start a device login: a device code for the CLI, a user code for the browser',
  tag: 'cli-login',
  action: 'public',
  mode: 'write',
  authRateLimit: true,
  body: deviceLoginBody,
  response: deviceLoginResponse,
  async handler({ db, body, now }) {
    const d = await startDeviceLogin(db, cleanClientName(body.clientName), now)
    return { body: { ...d, verificationPath: '/cli/device' }, audit: null }
  },
})

// @NOTE not under the sign-in limits: a CLI polls every few seconds for up to ten minutes,
// the device code is 256 random bits, and polling too fast is answered by ERR_SLOW_DOWN.
const pollDeviceToken = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/cli/device/token',
  summary: 'Poll a device login; the CLI token once approved',
  tag: 'cli-login',
  action: 'public',
  mode: 'write',
  body: devicePollBody,
  response: cliTokenGrantResponse,
  async handler({ db, body, now }) {
    let grant: CliGrant
    try {
      grant = await pollDevice(db, body.deviceCode, now)
    } catch (err) {
      return refuse<CliTokenGrant>(err, 'cli.login.device-poll')
    }
    return grantToken(db, grant, 'device', now)
  },
})

const approveDevice = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/cli/device/approve',
  summary: 'Approve or deny a device login (browser form)',
  tag: 'cli-login',
  action: 'cli.login.approve',
  mode: 'write',
  authRateLimit: true,
  body: z.object({ userCode: z.string().max(20), decision: z.enum(['approve', 'deny']), workspace: z.string().max(200).optional() }),
  response: z.object({ result: z.enum(['approved', 'denied']) }),
  form: { success: '/cli/done?result=approved', failure: '/cli/device' },
  async handler({ db, person, body, now }) {
    const approve = body.decision === 'approve'
    if (approve && !body.workspace) throw new ValidationError('Choose a workspace.')
    const ws = approve ? await ownWorkspace(db, person!.userId, body.workspace!) : undefined
    const decided = await decideDevice(db, { userCode: body.userCode, userId: person!.userId, workspaceId: ws?.id ?? '', approve }, now)
    if (!decided) throw new NotFoundError('login code')
    const result = approve ? ('approved' as const) : ('denied' as const)
    return {
      body: { result },
      redirect: `/cli/done?result=${result}`,
      audit: {
        action: approve ? 'cli.login.approve' : 'cli.login.deny',
        target: { type: 'user', id: person!.userId },
        details: { client: decided.clientName, flow: 'device', ...(ws ? { workspace: ws.id } : {}) },
      },
    }
  },
})

/** The CLI login routes, for the account pipeline (auth-pipeline.ts). */
export const cliLoginRoutes: AnyAuthRoute[] = [approveLogin, exchangeCode, startDevice, pollDeviceToken, approveDevice]
