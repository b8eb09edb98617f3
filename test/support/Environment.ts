/**
 * Settings from a given environment instead of the process's, for specs:
 * Effect's `ConfigProvider` over `env`.
 */
import { ConfigProvider, Effect } from "effect"

/** A `ConfigProvider` layer reading `env` as the environment. */
export const environment = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

/** Provides {@link environment} of `env` to an effect. */
export const withEnv = (env: Record<string, string>) => Effect.provide(environment(env))
