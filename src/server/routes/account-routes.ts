import { z } from 'zod'
import { NotFoundError, ValidationError } from '../../errors.js'
import { changePassword, checkCurrentPassword, deleteAccount, exportAccount, findAccount } from '../../identity/accounts.js'
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN } from '../../identity/passwords.js'
import { listSessions, revokeAllSessions, revokeSession } from '../../identity/sessions.js'
import { defineAuthRoute, type AnyAuthRoute } from '../auth-route.js'
import { listPersonWorkspaces } from '../../identity/person-workspaces.js'
import { accountResponse } from '../../api/account.js'

// A person's own account, whoever is signed in: profile, sessions, password, export,
// deletion. They take the browser session; a personal Bearer token (a credential of one
// workspace) only ends sessions and changes the password with the current one
// (`acceptsToken`). Events go to the audit log of every workspace the person belongs to.

const account = defineAuthRoute({
  scope: 'account',
  method: 'GET',
  url: '/v1/account',
  summary: 'Your account: profile, workspaces, sessions, and the CSRF token of this session',
  tag: 'account',
  action: 'account.read',
  mode: 'read',
  response: accountResponse,
  async handler({ app, db, person, now }) {
    const p = person!
    const a = await findAccount(db, p.userId)
    if (!a) throw new NotFoundError('account')
    const ws = (await listPersonWorkspaces(db, p.userId, 'slug')).map((w) => ({ id: w.id, slug: w.slug, name: w.name, role: w.role }))
    const sessions = await listSessions(db, p.userId, app.config.auth.session, now)
    return {
      body: {
        user: {
          id: a.id,
          email: a.email,
          name: a.name,
          emailVerified: a.emailVerifiedAt !== null,
          hasPassword: a.passwordHash !== null,
          createdVia: a.createdVia,
        },
        workspaces: ws.map((w) => ({ id: w.id, slug: w.slug, name: w.name, role: w.role })),
        sessions: sessions.map((s) => ({ ...s, current: s.id === p.sessionId })),
        csrfToken: p.csrfToken ?? null,
      },
      audit: null,
    }
  },
})

const exportRoute = defineAuthRoute({
  scope: 'account',
  method: 'GET',
  url: '/v1/account/export',
  summary: 'Export everything tied to your account as JSON (no secret values)',
  tag: 'account',
  action: 'account.read',
  mode: 'read',
  response: z.looseObject({ exportedAt: z.string() }),
  async handler({ app, db, person, now }) {
    const data = await exportAccount(db, person!.userId, app.config.auth.session, now)
    return {
      body: { ...data } as { exportedAt: string; [k: string]: unknown },
      audit: { action: 'account.export', target: { type: 'user', id: person!.userId } },
    }
  },
})

const signOut = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/account/sign-out',
  acceptsToken: true,
  summary: 'Sign out: end this session',
  tag: 'account',
  action: 'account.manage',
  mode: 'write',
  response: z.object({ ended: z.number() }),
  form: { success: '/sign-in?notice=signed-out', failure: '/account' },
  async handler({ db, person, now }) {
    const p = person!
    // A Bearer-token caller has no session to end here (tokens are revoked on their own route).
    if (!p.sessionId) return { body: { ended: 0 }, audit: null }
    const ended = (await revokeSession(db, p.userId, p.sessionId, now)) ? 1 : 0
    return { body: { ended }, session: { clear: true }, audit: { action: 'auth.sign-out', target: { type: 'session', id: p.sessionId } } }
  },
})

const signOutEverywhere = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/account/sign-out-everywhere',
  acceptsToken: true,
  summary: 'Sign out everywhere: end every session of your account',
  tag: 'account',
  action: 'account.manage',
  mode: 'write',
  response: z.object({ ended: z.number() }),
  form: { success: '/sign-in?notice=signed-out-everywhere', failure: '/account' },
  async handler({ db, person, now }) {
    const p = person!
    const ended = await revokeAllSessions(db, p.userId, undefined, now)
    return {
      body: { ended },
      ...(p.sessionId ? { session: { clear: true } as const } : {}),
      audit: { action: 'session.revoke-all', target: { type: 'user', id: p.userId }, details: { ended } },
    }
  },
})

const revokeOne = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/account/sessions/:session/revoke',
  acceptsToken: true,
  summary: 'End one of your sessions',
  tag: 'account',
  action: 'account.manage',
  mode: 'write',
  params: z.strictObject({ session: z.uuid() }),
  response: z.object({ ended: z.literal(1) }),
  form: { success: '/account?notice=session-ended', failure: '/account' },
  async handler({ db, person, params, now }) {
    const p = person!
    if (!(await revokeSession(db, p.userId, params.session, now))) throw new NotFoundError('session')
    return {
      body: { ended: 1 as const },
      ...(params.session === p.sessionId ? { session: { clear: true } as const } : {}),
      audit: { action: 'session.revoke', target: { type: 'session', id: params.session } },
    }
  },
})

const changePasswordRoute = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/account/password',
  acceptsToken: true,
  summary: 'Change your password (needs the current one; ends every other session)',
  tag: 'account',
  action: 'account.manage',
  mode: 'write',
  requires: 'password',
  authRateLimit: true,
  body: z.strictObject({
    currentPassword: z.string().min(1).max(PASSWORD_MAX),
    newPassword: z.string().min(PASSWORD_MIN, `at least ${PASSWORD_MIN} characters`).max(PASSWORD_MAX),
  }),
  response: z.object({ sessionsEnded: z.number() }),
  form: { success: '/account?notice=password-changed', failure: '/account' },
  async prepare({ db, person, body }) {
    await checkCurrentPassword(db, person!.userId, body.currentPassword)
    return hashPassword(body.newPassword)
  },
  async handler({ db, person, prepared, now }) {
    const p = person!
    const { sessionsEnded } = await changePassword(db, p.userId, prepared, p.sessionId, now)
    return {
      body: { sessionsEnded },
      audit: { action: 'auth.password-change', target: { type: 'user', id: p.userId }, details: { sessionsEnded } },
    }
  },
})

const deleteRoute = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/account/delete',
  summary: 'Delete your account (refused while you are the last Owner of a workspace)',
  tag: 'account',
  action: 'account.manage',
  mode: 'write',
  body: z.strictObject({ confirmEmail: z.string().max(254) }),
  response: z.object({ deleted: z.literal(true) }),
  form: { success: '/sign-in?notice=account-deleted', failure: '/account' },
  async handler({ db, person, body }) {
    const p = person!
    if (body.confirmEmail.trim().toLowerCase() !== p.email) {
      throw new ValidationError("Type your account's email address to confirm.", [
        { path: 'body.confirmEmail', message: "must be your account's email address" },
      ])
    }
    await deleteAccount(db, p.userId)
    return {
      body: { deleted: true as const },
      ...(p.sessionId ? { session: { clear: true } as const } : {}),
      audit: { action: 'account.delete', target: { type: 'user', id: p.userId } },
    }
  },
})

/** Every account route. */
export const accountRoutes: AnyAuthRoute[] = [account, exportRoute, signOut, signOutEverywhere, revokeOne, changePasswordRoute, deleteRoute]
