import { z } from 'zod'
import { actorId, requireUser } from '../../access/policy.js'
import {
  createdMachineResponse,
  createMachineBody,
  machineListResponse,
  machineRevocationResponse,
  machineTokenBody,
  machineTokenResponse,
  machineView,
} from '../../api/machines.js'
import { MAX_TOKEN_TTL_SECONDS } from '../../api/limits.js'
import {
  createdServiceTokenResponse,
  createServiceTokenBody,
  serviceTokenInfoResponse,
  serviceTokenListResponse,
} from '../../api/service-tokens.js'
import { checkCidr, resolveScopes } from '../../identity/integration-scopes.js'
import {
  checkClientCredentials,
  createMachine,
  findMachine,
  issueMachineToken,
  listMachines,
  revokeMachine,
} from '../../identity/machine-identities.js'
import { addOidcRules, checkIssuer } from '../../identity/machine-oidc-rules.js'
import { createServiceToken, listServiceTokens, revokeServiceToken } from '../../identity/service-tokens.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

// Workspace integrations: machine identities (client credentials exchanged for short-lived
// access tokens) and static service tokens. Managed by Owners and Admins; each creation,
// revocation and token issued is an audit entry. An integration's own token can never use
// these routes (policy.ts: integrations are not members).

const machineParams = z.strictObject({ workspace: workspaceParams.shape.workspace, machine: z.uuid() })

const createMachineRoute = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/machines',
  tag: 'integrations',
  summary: 'Create a machine identity: scopes, optional IP allow-list, OIDC issuers it trusts; its client secret (if any) is shown once',
  action: 'machines.manage',
  mode: 'write',
  status: 201,
  params: workspaceParams,
  body: createMachineBody,
  response: createdMachineResponse,
  async handler({ app, db, principal, workspace, body }) {
    const scopes = await resolveScopes(db, workspace.id, body.scopes)
    const allowedCidrs = (body.allowedCidrs ?? []).map(checkCidr)
    const oidcRules = body.oidcRules ?? []
    // The guard decides now whether an issuer may be reached at all (a private address is refused unless allowed).
    for (const [i, rule] of oidcRules.entries()) await app.outbound.check(checkIssuer(rule.issuer, `oidcRules.${i}.issuer`))
    const now = app.clock()
    const createdBy = requireUser(principal).userId
    const r = await createMachine(db, {
      workspaceId: workspace.id,
      name: body.name,
      scopes,
      allowedCidrs,
      tokenTtlSeconds: body.tokenTtlSeconds ?? MAX_TOKEN_TTL_SECONDS,
      createdBy,
      now,
      clientSecret: body.clientSecret ?? oidcRules.length === 0,
      oidcLimitTtl: body.oidcLimitTtl ?? false,
    })
    const rules = oidcRules.length
      ? await addOidcRules(db, { workspaceId: workspace.id, machineId: r.machine.id, rules: oidcRules, createdBy, now })
      : []
    return {
      body: { machine: r.machine, clientId: r.machine.clientId, clientSecret: r.clientSecret },
      audit: [
        {
          action: 'machine.create',
          target: { type: 'machine', id: r.machine.id },
          details: {
            name: r.machine.name,
            scopes: JSON.stringify(scopes),
            allowedCidrs,
            tokenTtlSeconds: r.machine.tokenTtlSeconds,
            clientSecret: r.clientSecret !== null,
            oidcLimitTtl: r.machine.oidcLimitTtl,
          },
        },
        ...rules.map((rule) => ({
          action: 'machine.oidc.trust' as const,
          target: { type: 'machine', id: r.machine.id },
          details: { rule: rule.id, issuer: rule.issuer, audiences: JSON.stringify(rule.audiences), claims: JSON.stringify(rule.claims) },
        })),
      ],
    }
  },
})

const listMachinesRoute = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/machines',
  summary: 'List machine identities (never their secrets)',
  tag: 'integrations',
  action: 'machines.manage',
  mode: 'read',
  params: workspaceParams,
  response: machineListResponse,
  async handler({ db, workspace }) {
    return { body: { machines: await listMachines(db, workspace.id) } }
  },
})

const getMachineRoute = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/machines/:machine',
  summary: 'Show a machine identity',
  tag: 'integrations',
  action: 'machines.manage',
  mode: 'read',
  params: machineParams,
  response: z.object({ machine: machineView }),
  async handler({ db, workspace, params }) {
    return { body: { machine: await findMachine(db, workspace.id, params.machine) } }
  },
})

const revokeMachineRoute = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/machines/:machine',
  summary: 'Revoke a machine identity: its secret and every live access token stop working at once',
  tag: 'integrations',
  action: 'machines.manage',
  mode: 'write',
  params: machineParams,
  response: machineRevocationResponse,
  async handler({ app, db, workspace, params }) {
    const r = await revokeMachine(db, workspace.id, params.machine, app.clock())
    return {
      body: r,
      audit: {
        action: 'machine.revoke',
        target: { type: 'machine', id: r.machine.id },
        details: { name: r.machine.name, liveTokens: r.liveTokens },
      },
    }
  },
})

const exchange = defineRoute({
  method: 'POST',
  url: '/v1/machine/token',
  tag: 'integrations',
  summary: "Exchange a machine identity's client id and secret for an access token (at most one hour); no Bearer token needed",
  action: 'machine.authenticate',
  mode: 'write',
  auth: 'none',
  authRateLimit: { count: 'failures' },
  body: machineTokenBody,
  response: machineTokenResponse,
  async tenantFromBody({ db, body, ip }) {
    const r = await checkClientCredentials(db, body.clientId, body.clientSecret, ip)
    return { workspace: r.workspace, principal: r.principal }
  },
  async handler({ app, db, principal, workspace, ip }) {
    const machineId = actorId(principal)
    const m = await findMachine(db, workspace.id, machineId)
    const now = app.clock()
    const t = await issueMachineToken(db, { workspaceId: workspace.id, machineId, ttlSeconds: m.tokenTtlSeconds, ip, now })
    return {
      body: {
        accessToken: t.token,
        tokenType: 'Bearer' as const,
        expiresIn: Math.round((Date.parse(t.expiresAt) - now.getTime()) / 1000),
        expiresAt: t.expiresAt,
      },
      audit: {
        action: 'machine.token.issue',
        target: { type: 'machine_token', id: t.id },
        details: { machine: machineId, expiresAt: t.expiresAt },
      },
    }
  },
})

const createService = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/service-tokens',
  tag: 'integrations',
  summary: 'Create a static service token: scoped, optionally expiring; shown once',
  action: 'service-tokens.manage',
  mode: 'write',
  status: 201,
  params: workspaceParams,
  body: createServiceTokenBody,
  response: createdServiceTokenResponse,
  async handler({ app, db, principal, workspace, body }) {
    const scopes = await resolveScopes(db, workspace.id, body.scopes)
    const now = app.clock()
    const expiresAt = body.expiresInDays ? new Date(now.getTime() + body.expiresInDays * 86_400_000).toISOString() : null
    const r = await createServiceToken(db, {
      workspaceId: workspace.id,
      name: body.name,
      scopes,
      createdBy: requireUser(principal).userId,
      expiresAt,
      now,
    })
    return {
      body: r,
      audit: {
        action: 'service_token.create',
        target: { type: 'service_token', id: r.info.id },
        details: { name: r.info.name, scopes: JSON.stringify(scopes), expiresAt },
      },
    }
  },
})

const listService = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/service-tokens',
  summary: 'List service tokens (never the tokens)',
  tag: 'integrations',
  action: 'service-tokens.manage',
  mode: 'read',
  params: workspaceParams,
  response: serviceTokenListResponse,
  async handler({ db, workspace }) {
    return { body: { tokens: await listServiceTokens(db, workspace.id) } }
  },
})

const revokeService = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/service-tokens/:serviceToken',
  summary: 'Revoke a service token (fails at once on every node)',
  tag: 'integrations',
  action: 'service-tokens.manage',
  mode: 'write',
  params: z.strictObject({ workspace: workspaceParams.shape.workspace, serviceToken: z.uuid() }),
  response: serviceTokenInfoResponse,
  async handler({ app, db, workspace, params }) {
    const info = await revokeServiceToken(db, workspace.id, params.serviceToken, app.clock())
    return {
      body: { info },
      audit: { action: 'service_token.revoke', target: { type: 'service_token', id: info.id }, details: { name: info.name } },
    }
  },
})

export const integrationRoutes: AnyRoute[] = [
  createMachineRoute,
  listMachinesRoute,
  getMachineRoute,
  revokeMachineRoute,
  exchange,
  createService,
  listService,
  revokeService,
]
