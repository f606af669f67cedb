import { z } from 'zod'
import { requireUser } from '../../access/policy.js'
import { addOidcRulesBody, oidcRuleListResponse, oidcRuleResponse, oidcTokenBody } from '../../api/machine-oidc.js'
import { machineTokenResponse } from '../../api/machines.js'
import { InternalError, OidcTokenRejectedError } from '../../errors.js'
import { ipAllowed } from '../../identity/integration-scopes.js'
import { findMachine, issueMachineToken, machineForExchange } from '../../identity/machine-identities.js'
import { addOidcRules, checkIssuer, listOidcRules, type OidcRule, oidcRulesOf, removeOidcRule } from '../../identity/machine-oidc-rules.js'
import { checkIdToken, type OidcCheck, type OidcCheckResult } from '../../identity/oidc-token-check.js'
import { defineAuthRoute, type AnyAuthRoute } from '../auth-route.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

// OIDC federation for machine identities (docs/ci-federation.md): the trust rules of an
// identity, managed by the workspace's Owners and Admins, and the exchange of a workload's ID
// token for the identity's access token. The exchange runs in the account pipeline: it names
// its workspace through the identity (`clientId`), and a refusal is recorded in that
// workspace's log — with the check that failed — before the one generic error is answered.

const machineParams = z.strictObject({ workspace: workspaceParams.shape.workspace, machine: z.uuid() })

const listRules = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/machines/:machine/oidc-rules',
  summary: "List the OIDC issuers a machine identity trusts, with each rule's audiences and claim conditions",
  tag: 'integrations',
  action: 'machines.manage',
  mode: 'read',
  params: machineParams,
  response: oidcRuleListResponse,
  async handler({ db, workspace, params }) {
    await findMachine(db, workspace.id, params.machine)
    return { body: { rules: await listOidcRules(db, workspace.id, params.machine) } }
  },
})

const addRules = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/machines/:machine/oidc-rules',
  summary: 'Trust OIDC issuers for a machine identity: issuer URL, audiences and claim conditions per rule',
  tag: 'integrations',
  action: 'machines.manage',
  mode: 'write',
  status: 201,
  params: machineParams,
  body: addOidcRulesBody,
  response: oidcRuleListResponse,
  async handler({ app, db, principal, workspace, params, body }) {
    await findMachine(db, workspace.id, params.machine)
    // The guard decides now whether the issuer may be reached at all (a private address is refused unless allowed).
    for (const [i, r] of body.rules.entries()) await app.outbound.check(checkIssuer(r.issuer, `rules.${i}.issuer`))
    const added = await addOidcRules(db, {
      workspaceId: workspace.id,
      machineId: params.machine,
      rules: body.rules,
      createdBy: requireUser(principal).userId,
      now: app.clock(),
    })
    return {
      body: { rules: await listOidcRules(db, workspace.id, params.machine) },
      audit: added.map((r) => ({
        action: 'machine.oidc.trust' as const,
        target: { type: 'machine', id: params.machine },
        details: { rule: r.id, issuer: r.issuer, audiences: JSON.stringify(r.audiences), claims: JSON.stringify(r.claims) },
      })),
    }
  },
})

const removeRule = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/machines/:machine/oidc-rules/:rule',
  summary:
    'Stop trusting one OIDC rule of a machine identity (access tokens already issued live on until they expire or the identity is revoked)',
  tag: 'integrations',
  action: 'machines.manage',
  mode: 'write',
  params: z.strictObject({ ...machineParams.shape, rule: z.uuid() }),
  response: oidcRuleResponse,
  async handler({ db, workspace, params }) {
    const rule = await removeOidcRule(db, workspace.id, params.machine, params.rule)
    return {
      body: { rule },
      audit: {
        action: 'machine.oidc.untrust',
        target: { type: 'machine', id: params.machine },
        details: { rule: rule.id, issuer: rule.issuer },
      },
    }
  },
})

/**
 * What the exchange found before its transaction: the identity's workspace (when it exists),
 * its trust rules, and — once `verify` ran — the token's check.
 */
interface Prepared {
  readonly machineId: string
  readonly workspaceId: string | null
  readonly ttlSeconds: number
  readonly limitTtl: boolean
  readonly rules: readonly OidcRule[]
  /** Null until `verify` checked the token. */
  readonly result: OidcCheckResult | null
}

const refused = (check: OidcCheck): OidcCheckResult => ({ ok: false, check })

const exchange = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/machine/oidc-token',
  summary:
    "Exchange a workload's OIDC ID token for the access token of a machine identity that trusts its issuer (at most one hour); no Bearer token needed",
  tag: 'integrations',
  action: 'machine.authenticate',
  mode: 'write',
  authRateLimit: { count: 'failures' },
  body: oidcTokenBody,
  response: machineTokenResponse,
  async prepare({ db, body, client }): Promise<Prepared> {
    const m = await machineForExchange(db, body.clientId)
    const base = { machineId: body.clientId, ttlSeconds: 0, limitTtl: false, rules: [] }
    if (!m.live) return { ...base, workspaceId: m.workspaceId, result: refused('identity') }
    const found = { ...base, workspaceId: m.workspace.id, ttlSeconds: m.ttlSeconds, limitTtl: m.oidcLimitTtl }
    if (!ipAllowed(m.allowedCidrs, client.ip)) return { ...found, result: refused('address') }
    return { ...found, rules: await oidcRulesOf(db, m.principal.id), result: null }
  },
  // The issuer's keys may have to be fetched: no database connection waits for it.
  async verify({ app, body, prepared: p, now }) {
    return p.result ? p : { ...p, result: await checkIdToken(app.oidcIssuerKeys, p.rules, body.idToken, now) }
  },
  auditWorkspace: (p) => p.workspaceId,
  async handler({ db, prepared: p, client, now }) {
    if (!p.result) throw new InternalError('the OIDC exchange reached its handler unverified')
    let r = p.result
    // The identity is read again in the exchange's own transaction: one revoked meanwhile issues nothing.
    if (r.ok && !(await machineForExchange(db, p.machineId)).live) r = { ...r, ok: false, check: 'identity' }
    const left = r.ok ? Math.floor(r.expiresAt - now.getTime() / 1000) : 0
    const ttlSeconds = p.limitTtl ? Math.min(p.ttlSeconds, left) : p.ttlSeconds
    if (r.ok && ttlSeconds < 1) r = { ok: false, check: 'expired', issuer: r.issuer, subject: r.subject }
    if (!r.ok) {
      const details = {
        check: r.check,
        ...(r.issuer ? { issuer: r.issuer } : {}),
        ...(r.subject ? { subject: r.subject } : {}),
        ...(r.detail ? { detail: r.detail } : {}),
      }
      return {
        body: null as never,
        fail: new OidcTokenRejectedError(),
        anonymous: true,
        auditUser: p.machineId,
        ...(p.workspaceId ? {} : { unattributed: { event: 'machine.oidc', reason: r.check } }),
        audit: p.workspaceId ? { action: 'machine.oidc.refused' as const, target: { type: 'machine', id: p.machineId }, details } : null,
      }
    }
    const t = await issueMachineToken(db, { workspaceId: p.workspaceId!, machineId: p.machineId, ttlSeconds, ip: client.ip, now })
    return {
      body: {
        accessToken: t.token,
        tokenType: 'Bearer' as const,
        expiresIn: Math.round((Date.parse(t.expiresAt) - now.getTime()) / 1000),
        expiresAt: t.expiresAt,
      },
      actor: { type: 'machine' as const, id: p.machineId },
      audit: {
        action: 'machine.token.issue' as const,
        target: { type: 'machine_token', id: t.id },
        details: { machine: p.machineId, method: 'oidc', issuer: r.issuer, subject: r.subject, rule: r.rule.id, expiresAt: t.expiresAt },
      },
    }
  },
})

export const machineOidcRoutes: AnyRoute[] = [listRules, addRules, removeRule]
export const machineOidcAuthRoutes: AnyAuthRoute[] = [exchange]
