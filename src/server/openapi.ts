import { z } from 'zod'
import type { AnyRoute } from './route.js'
import { changeRequestResponse } from '../api/change-requests.js'
import { errorEnvelope } from '../api/errors.js'

type JsonSchema = Record<string, unknown>

/** What the document needs of a route: workspace routes and account/public routes alike. */
export type DocumentedRoute = Pick<
  AnyRoute,
  'method' | 'url' | 'summary' | 'tag' | 'action' | 'params' | 'query' | 'body' | 'response' | 'status' | 'auth' | 'propose' | 'events'
> & {
  /** `public`: no credential; `account`: a person's token or session cookie; absent: a workspace route. */
  scope?: 'public' | 'account'
}

/**
 * The JSON Schema of a Zod schema, as the OpenAPI document states it; also what a route with
 * `compiledResponse` is serialized by, so the answer and its documentation cannot differ.
 */
export function schemaOf(s: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const j = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as JsonSchema
  delete j.$schema
  return j
}

function parametersOf(route: DocumentedRoute): unknown[] {
  const out: unknown[] = []
  for (const [where, schema] of [
    ['path', route.params],
    ['query', route.query],
  ] as const) {
    if (!schema) continue
    const j = schemaOf(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] }
    for (const [name, prop] of Object.entries(j.properties ?? {})) {
      // A wildcard (the relay's `…/relay/*`) stays in the path as written: OpenAPI has no such parameter.
      if (name === '*') continue
      out.push({ name, in: where, required: where === 'path' || (j.required ?? []).includes(name), schema: prop })
    }
  }
  return out
}

/** The OpenAPI 3.1 document, generated from the same route table and schemas the server runs. */
export function openApiDocument(routes: DocumentedRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}')
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${path
        .replace(/[{}]/g, '')
        .split('/')
        .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
        .join('')}`,
      'x-coffer-action': r.action,
      security: r.scope === 'public' || r.auth === 'none' ? [] : [{ bearer: [] }, { session: [] }],
      parameters: parametersOf(r),
      responses: {
        // An event stream's schema is that of each event's data (the event's name is in `x-coffer-event`).
        [String(r.status ?? 200)]: r.events
          ? {
              description: `Server-sent events: each \`${r.events.event}\` event's data, then \`end\` with an error's code`,
              content: { 'text/event-stream': { schema: schemaOf(r.response, 'output'), 'x-coffer-event': r.events.event } },
            }
          : { description: 'Success', content: { 'application/json': { schema: schemaOf(r.response, 'output') } } },
        default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    }
    if (r.propose) {
      ;(op.responses as Record<string, unknown>)['202'] = {
        description: 'The environment is protected: the write was not applied and became a change request',
        content: { 'application/json': { schema: schemaOf(changeRequestResponse, 'output') } },
      }
    }
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: schemaOf(r.body, 'input') } } }
    paths[path] ??= {}
    paths[path][r.method.toLowerCase()] = op
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Coffer API',
      version,
      description:
        'Secrets vault API. Authenticate with `Authorization: Bearer coffer_pat_…`. Errors use one envelope with stable codes (docs/errors.md).',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A Coffer token (coffer_pat_…)' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'coffer_session',
          description:
            'The browser session of a signed-in person; requests that change state also send its CSRF token in x-csrf-token (GET /v1/account returns it)',
        },
      },
      schemas: { Error: schemaOf(errorEnvelope, 'output') },
    },
    paths,
  }
}
