import { z } from 'zod'
import { meResponse } from '../../api/me.js'
import { createdTokenResponse, createTokenBody, tokenInfoResponse, tokenListResponse } from '../../api/tokens.js'
import { requireUser } from '../../access/policy.js'
import { issueToken, listTokens, revokeToken } from '../../identity/identity-service.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

const me = defineRoute({
  method: 'GET',
  url: '/v1/me',
  summary: 'Who the token belongs to, and its workspace and role',
  tag: 'identity',
  action: 'self.read',
  mode: 'read',
  response: meResponse,
  async handler({ principal: p, workspace }) {
    if (p.type !== 'user') {
      const only = p.scopes.length === 1 ? p.scopes[0]! : undefined
      const env = only && only.environments !== '*' && only.environments.length === 1 ? only.environments[0]! : undefined
      const scope = only && env ? { project: only.projectId, environment: env } : null
      return {
        body: {
          user: null,
          integration: {
            type: p.type,
            id: p.id,
            name: p.name,
            scopes: p.scopes.map((s) => ({ ...s, environments: s.environments === '*' ? ('*' as const) : [...s.environments] })),
          },
          workspace,
          role: null,
          tokenId: p.tokenId,
          scope,
        },
      }
    }
    return {
      body: { user: { id: p.userId, email: p.email }, integration: null, workspace, role: p.role, tokenId: p.tokenId, scope: null },
    }
  },
})

const listMyTokens = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/tokens',
  summary: 'List your personal access tokens',
  tag: 'identity',
  action: 'self.tokens.manage',
  mode: 'read',
  params: workspaceParams,
  response: tokenListResponse,
  async handler({ db, principal, workspace }) {
    return { body: { tokens: await listTokens(db, workspace.id, requireUser(principal).userId) } }
  },
})

const createMyToken = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/tokens',
  summary: 'Create a personal access token (shown once)',
  tag: 'identity',
  action: 'self.tokens.manage',
  mode: 'write',
  status: 201,
  params: workspaceParams,
  body: createTokenBody,
  response: createdTokenResponse,
  async handler({ app, db, principal, workspace, body }) {
    const now = app.clock()
    const expiresAt = body.expiresInDays ? new Date(now.getTime() + body.expiresInDays * 86_400_000).toISOString() : null
    const { token, info } = await issueToken(
      db,
      {
        workspaceId: workspace.id,
        userId: requireUser(principal).userId,
        name: body.name,
        expiresAt,
      },
      now,
    )
    return {
      body: { token, info },
      audit: { action: 'token.create', target: { type: 'token', id: info.id }, details: { name: info.name, expiresAt } },
    }
  },
})

const revokeMyToken = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/tokens/:token',
  summary: 'Revoke one of your tokens',
  tag: 'identity',
  action: 'self.tokens.manage',
  mode: 'write',
  params: z.strictObject({ workspace: workspaceParams.shape.workspace, token: z.uuid() }),
  response: tokenInfoResponse,
  async handler({ app, db, principal, workspace, params }) {
    const info = await revokeToken(db, workspace.id, requireUser(principal).userId, params.token, app.clock())
    return { body: { info }, audit: { action: 'token.revoke', target: { type: 'token', id: info.id }, details: { name: info.name } } }
  },
})

export const identityRoutes: AnyRoute[] = [me, listMyTokens, createMyToken, revokeMyToken]
