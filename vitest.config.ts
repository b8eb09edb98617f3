import { defineConfig } from "vitest/config"

/**
 * Four projects: `unit` needs nothing running; `integration` starts FerretDB
 * and Jaeger once per run (test/servers/globalSetup.ts) and Prometheus per test;
 * `package` packs the library and installs it into a fresh project as a user
 * would (it needs the npm registry or npm's cache); `alerts` (the approval
 * latency SLO's alerts delivered from a running network) runs in a group of
 * its own (`sequence.groupOrder`), never beside another test file: a latency
 * objective of 100 ms is a fair test only on a machine that is not also
 * running the other networks.
 * `npx vitest run --project unit` runs the specs alone.
 */
export default defineConfig({
  test: {
    reporters: ["default", "./test/support/SummaryReporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "unit", include: ["test/*.test.ts"] } },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          exclude: ["test/integration/alerts.test.ts"],
          globalSetup: ["test/servers/globalSetup.ts"]
        }
      },
      {
        extends: true,
        test: {
          name: "alerts",
          include: ["test/integration/alerts.test.ts"],
          globalSetup: ["test/servers/globalSetup.ts"],
          sequence: { groupOrder: 1 }
        }
      },
      { extends: true, test: { name: "package", include: ["test/package/**/*.test.ts"], testTimeout: 120_000 } }
    ]
  }
})
