/** Coffer's version, shown by `coffer --version` and in the API document. */
export const VERSION = '0.1.0'
