import { z } from 'zod'
import { keyJobResponse, keyRotationResponse, keyStatusResponse } from '../../api/keys.js'
import { findScope } from '../../vault/project-service.js'
import { findKeyJob, keyStatus, rotateDataKey } from '../../vault/key-rotation.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { environmentParams, workspaceParams } from '../schemas.js'

const E = '/v1/workspaces/:workspace/projects/:project/environments/:environment'

const rotate = defineRoute({
  method: 'POST',
  url: `${E}/keys/rotate`,
  tag: 'keys',
  action: 'key.rotate',
  mode: 'write',
  status: 202,
  summary:
    "Rotate the environment's data key: a new version is primary at once; a background job reseals older versions, then destroys them",
  params: environmentParams,
  body: z.strictObject({}).optional(),
  response: keyRotationResponse,
  async handler({ app, db, workspace, params }) {
    const scope = await findScope(db, workspace.id, params.project, params.environment)
    const r = (await rotateDataKey(db, app.dataKeys, scope, 'manual', app.clock()))!
    return {
      body: { key: { id: r.key.id, version: r.key.version, previousVersion: r.key.previous }, job: r.job },
      audit: r.audit,
      // The job is visible once this transaction commits; the resealer then claims it from
      // the database like any node would.
      afterCommit: async () => app.resealer.kick(),
    }
  },
})

const status = defineRoute({
  method: 'GET',
  url: `${E}/keys`,
  tag: 'keys',
  action: 'key.read',
  mode: 'read',
  summary: "The environment's data-key versions (never the keys) and its latest reseal jobs",
  params: environmentParams,
  response: keyStatusResponse,
  async handler({ db, workspace, params }) {
    const scope = await findScope(db, workspace.id, params.project, params.environment)
    return { body: await keyStatus(db, scope) }
  },
})

const job = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/key-jobs/:job',
  tag: 'keys',
  action: 'key.read',
  mode: 'read',
  summary: "A reseal job's progress",
  params: workspaceParams.extend({ job: z.uuid() }),
  response: keyJobResponse,
  async handler({ db, workspace, params }) {
    return { body: { job: await findKeyJob(db, workspace.id, params.job) } }
  },
})

export const keyRoutes: AnyRoute[] = [rotate, status, job]
