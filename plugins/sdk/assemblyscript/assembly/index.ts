// Uptimizr Edge plugin SDK for AssemblyScript.
//
// A plugin's entry file registers a filter and re-exports the ABI:
//
//     import { Event, Verdict, registerFilter } from "@uptimizr/plugin-sdk/assembly";
//     export * from "@uptimizr/plugin-sdk/assembly/exports";
//
//     registerFilter((ev: Event): Verdict => ev.typeIs("pointer_move") ? Verdict.Drop : Verdict.Keep);

export { ByteBuffer } from "./buffer";
export {
  Span, NONE, Kind, MAX_DEPTH, makeSpan, spanStart, spanEnd, spanLength, kindOf,
  skipValue, skipString, stringEquals, unescapeInto, escapeUtf8Into, escapeStringInto,
  isPlainString, parseNumber,
} from "./json";
export { JsonView, Event, Members, Elements, Bytes, IMMUTABLE_FIELDS } from "./view";
export {
  Verdict, ErrorCode, FilterFn, ConfigFn, BatchFn, registerFilter, onConfig, onBatch, rejectBatch,
} from "./abi";
