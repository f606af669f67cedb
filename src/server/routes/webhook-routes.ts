import { z } from 'zod'
import {
  createWebhookBody,
  rotateWebhookSecretBody,
  webhookDeliveriesResponse,
  webhookDeliveryResponse,
  webhookListResponse,
  webhookResponse,
  webhookWithSecretResponse,
} from '../../api/webhooks.js'
import { requireUser } from '../../access/policy.js'
import { ValidationError } from '../../errors.js'
import { queueEvent } from '../../webhooks/dispatch.js'
import {
  createEndpoint,
  deleteEndpoint,
  enableEndpoint,
  findDelivery,
  findEndpoint,
  listEndpoints,
  listDeliveries,
  redeliver,
  rotateSecret,
} from '../../webhooks/endpoints.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

// Outbound webhooks (docs/webhooks.md): Owners and Admins manage a workspace's endpoints and
// read their delivery log. The signing secret is in the answer only when it is made.

const W = '/v1/workspaces/:workspace/webhooks'
const webhookParams = workspaceParams.extend({ webhook: z.uuid() })
const deliveryParams = workspaceParams.extend({ delivery: z.string().regex(/^msg_[0-9a-f]{32}$/) })

const create = defineRoute({
  method: 'POST',
  url: W,
  tag: 'webhooks',
  action: 'webhook.manage',
  mode: 'write',
  status: 201,
  summary: 'Add an endpoint for chosen events; the answer holds its signing secret, shown this once',
  params: workspaceParams,
  body: createWebhookBody,
  response: webhookWithSecretResponse,
  async handler({ app, db, principal, workspace, body }) {
    // The address is checked (name resolved, range allowed) when saved, and again on every delivery.
    await app.outbound.check(body.url)
    const r = await createEndpoint(db, app.dataKeys, {
      workspaceId: workspace.id,
      url: body.url,
      events: body.events,
      description: body.description ?? '',
      createdBy: requireUser(principal).userId,
      now: app.clock(),
    })
    return {
      body: { webhook: r.endpoint, secret: r.secret },
      audit: { action: 'webhook.create', target: { type: 'webhook', id: r.endpoint.id }, details: { url: body.url, events: body.events } },
    }
  },
})

const list = defineRoute({
  method: 'GET',
  url: W,
  tag: 'webhooks',
  action: 'webhook.read',
  mode: 'read',
  summary: "The workspace's webhook endpoints (never their secrets)",
  params: workspaceParams,
  response: webhookListResponse,
  async handler({ db, workspace }) {
    return { body: { webhooks: await listEndpoints(db, workspace.id) } }
  },
})

const remove = defineRoute({
  method: 'DELETE',
  url: `${W}/:webhook`,
  tag: 'webhooks',
  action: 'webhook.manage',
  mode: 'write',
  summary: 'Delete an endpoint and its delivery log',
  params: webhookParams,
  response: webhookResponse,
  async handler({ db, workspace, params }) {
    const e = await deleteEndpoint(db, workspace.id, params.webhook)
    return { body: { webhook: e }, audit: { action: 'webhook.delete', target: { type: 'webhook', id: e.id }, details: { url: e.url } } }
  },
})

const rotate = defineRoute({
  method: 'POST',
  url: `${W}/:webhook/rotate-secret`,
  tag: 'webhooks',
  action: 'webhook.manage',
  mode: 'write',
  summary: 'A new signing secret (shown once); the previous one keeps signing beside it for the overlap (default 24 h)',
  params: webhookParams,
  body: rotateWebhookSecretBody.optional(),
  response: webhookWithSecretResponse,
  async handler({ app, db, workspace, params, body }) {
    const hours = body?.overlapHours ?? 24
    const r = await rotateSecret(db, app.dataKeys, workspace.id, params.webhook, hours * 3_600_000, app.clock())
    return {
      body: { webhook: r.endpoint, secret: r.secret },
      audit: {
        action: 'webhook.rotate_secret',
        target: { type: 'webhook', id: r.endpoint.id },
        details: { secretVersion: r.endpoint.secretVersion, overlapHours: hours },
      },
    }
  },
})

const enable = defineRoute({
  method: 'POST',
  url: `${W}/:webhook/enable`,
  tag: 'webhooks',
  action: 'webhook.manage',
  mode: 'write',
  summary: 'Enable an endpoint that was disabled for failing',
  params: webhookParams,
  body: z.strictObject({}).optional(),
  response: webhookResponse,
  async handler({ db, workspace, params }) {
    const e = await enableEndpoint(db, workspace.id, params.webhook)
    return { body: { webhook: e }, audit: { action: 'webhook.enable', target: { type: 'webhook', id: e.id } } }
  },
})

const test = defineRoute({
  method: 'POST',
  url: `${W}/:webhook/test`,
  tag: 'webhooks',
  action: 'webhook.manage',
  mode: 'write',
  status: 202,
  summary: 'Queue a `webhook.test` message to the endpoint (whatever events it chose)',
  params: webhookParams,
  body: z.strictObject({}).optional(),
  response: webhookDeliveryResponse,
  async handler({ app, db, workspace, params }) {
    const e = await findEndpoint(db, workspace.id, params.webhook)
    if (!e.enabled) throw new ValidationError('The endpoint is disabled; enable it first (coffer webhooks enable).')
    const [id] = await queueEvent(db, workspace.id, 'webhook.test', { webhook: e.id }, app.clock(), { only: e.id })
    const delivery = await findDelivery(db, workspace.id, id!)
    return {
      body: { delivery },
      audit: { action: 'webhook.test', target: { type: 'webhook', id: e.id }, details: { message: delivery.id } },
      afterCommit: async () => app.webhooks.kick(),
    }
  },
})

const deliveries = defineRoute({
  method: 'GET',
  url: `${W}/:webhook/deliveries`,
  tag: 'webhooks',
  action: 'webhook.read',
  mode: 'read',
  summary: "An endpoint's messages, newest first: state, attempts, last status, error and latency",
  params: webhookParams,
  query: z.strictObject({ limit: z.coerce.number().int().min(1).max(500).optional() }),
  response: webhookDeliveriesResponse,
  async handler({ db, workspace, params, query }) {
    return { body: { deliveries: await listDeliveries(db, workspace.id, params.webhook, query.limit ?? 50) } }
  },
})

const resend = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/webhook-deliveries/:delivery/redeliver',
  tag: 'webhooks',
  action: 'webhook.manage',
  mode: 'write',
  status: 202,
  summary: 'Send a message again (same webhook-id, a fresh schedule of attempts)',
  params: deliveryParams,
  body: z.strictObject({}).optional(),
  response: webhookDeliveryResponse,
  async handler({ app, db, workspace, params }) {
    const delivery = await redeliver(db, workspace.id, params.delivery, app.clock())
    return {
      body: { delivery },
      audit: { action: 'webhook.redeliver', target: { type: 'webhook', id: delivery.webhookId }, details: { message: delivery.id } },
      afterCommit: async () => app.webhooks.kick(),
    }
  },
})

export const webhookRoutes: AnyRoute[] = [create, list, remove, rotate, enable, test, deliveries, resend]
