// The ABI v1 exports. A plugin's entry file re-exports them:
//
//     export * from "@uptimizr/plugin-sdk/assembly/exports";

export { uptimizr_abi_version, uptimizr_alloc, uptimizr_init, uptimizr_filter } from "./abi";
