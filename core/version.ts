import pkg from '../package.json' with { type: 'json' }

/** pickup's version, as the cluster API's `/version` and `/id` report it. */
export const PICKUP_VERSION: string = pkg.version
