import { z } from 'zod'
import { ref } from '../api/fields.js'
import { secretKey } from '../api/secrets.js'

// The server's own schemas: path parameters and query flags. The request and response bodies
// a client sees are the API's contract and live in src/api.

export const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')

export const workspaceParams = z.strictObject({ workspace: ref })
export const projectParams = z.strictObject({ workspace: ref, project: ref })
export const environmentParams = z.strictObject({ workspace: ref, project: ref, environment: ref })
export const secretParams = z.strictObject({ workspace: ref, project: ref, environment: ref, key: secretKey })
