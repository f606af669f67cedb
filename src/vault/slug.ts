import { ValidationError } from '../errors.js'

export const SLUG_RE = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/

/** A URL-safe slug from a display name: lowercase letters, digits and dashes. */
export function slugify(name: string): string {
  const s = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '')
  if (!SLUG_RE.test(s))
    throw new ValidationError(`Cannot make a slug from the name; give one with letters or digits.`, [
      { path: 'name', message: 'needs letters or digits' },
    ])
  return s
}
