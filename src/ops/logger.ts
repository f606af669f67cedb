/**
 * The structured logger a background part writes to (the server passes its own, pino-based
 * one). Objects are logged as JSON fields; the redaction rules of redact.ts apply to them.
 */
export interface Logger {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}
