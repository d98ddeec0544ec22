// A plugin that exercises the SDK, driven by the `name` of custom events.
// Used by the SDK's tests only.

import {
  Event, JsonView, Verdict, Members, Elements, Bytes, ByteBuffer, NONE,
  registerFilter, onConfig, onBatch, rejectBatch,
} from "../../assembly/index";
export * from "../../assembly/exports";

let marker = "[x]";
let batchSize = 0;
const props = new Members();
const elems = new Elements();
const text = new Bytes();
const scratch = new ByteBuffer();

onConfig((cfg: JsonView): i32 => {
  if (cfg.bool(cfg.get("refuse"))) return -100;
  let m = cfg.get("marker");
  if (m != NONE) {
    if (!cfg.isString(m)) return -101;
    marker = cfg.string(m);
  }
  return 0;
});

onBatch((count: i32): void => {
  batchSize = count;
});

function setOut(ev: Event, value: string): bool {
  return ev.replaceString(ev.getIn("props", "out"), value);
}

registerFilter((ev: Event): Verdict => {
  if (ev.typeIs("pointer_move")) return Verdict.Drop;
  if (!ev.typeIs("custom")) return Verdict.Keep;
  let name = ev.get("name");
  if (ev.equals(name, "drop")) return Verdict.Drop;
  if (ev.equals(name, "mark")) {
    props.over(ev.get("props"));
    while (props.next()) {
      if (ev.isString(props.value)) ev.replaceString(props.value, marker);
    }
  } else if (ev.equals(name, "same")) {
    props.over(ev.get("props"));
    while (props.next()) {
      if (ev.isString(props.value)) ev.replaceString(props.value, ev.string(props.value));
    }
  } else if (ev.equals(name, "echo")) {
    let t = ev.getIn("props", "text");
    ev.replaceString(t, ev.string(t) + "|" + marker);
  } else if (ev.equals(name, "upper")) {
    // byte-level path: upper-case ASCII letters of props.text
    let t = ev.getIn("props", "text");
    if (ev.readUtf8(t, text)) {
      scratch.reset();
      for (let i = 0; i < text.len; i++) {
        let c = text.at(i);
        scratch.pushByte(c - 0x61 < 26 ? c - 0x20 : c);
      }
      ev.replaceUtf8(t, scratch.ptr, scratch.len);
    }
  } else if (ev.equals(name, "immutable")) {
    let allowed = 0;
    let fields = ["type", "projectId", "sessionId", "visitorId", "ts"];
    for (let i = 0; i < fields.length; i++) {
      let j = ev.indexOf(fields[i]);
      if (j < 0) continue;
      if (ev.replaceString(ev.valueAt(j), "x")) allowed++;
      if (ev.replaceString(ev.keyAt(j), "x")) allowed++;
    }
    // a forged span straddling the envelope must be refused too
    let whole = ev.span;
    if (ev.replaceString(whole, "x")) allowed++;
    setOut(ev, allowed == 0 ? "refused" : "allowed " + allowed.toString());
  } else if (ev.equals(name, "reject")) {
    rejectBatch(-104);
  } else if (ev.equals(name, "number")) {
    let n = ev.number(ev.getIn("props", "n"));
    setOut(ev, (n * 2).toString());
  } else if (ev.equals(name, "keys")) {
    let keys = "";
    props.over(ev.get("props"));
    while (props.next()) {
      if (keys.length > 0) keys += ",";
      keys += ev.string(props.key);
    }
    setOut(ev, keys);
  } else if (ev.equals(name, "nested")) {
    let title = ev.getIn("pageMeta", "title");
    let vp = ev.getIn("pageMeta", "viewport");
    let dims = "";
    elems.over(vp);
    while (elems.next()) {
      if (elems.index > 0) dims += "x";
      dims += (<i32>ev.number(elems.value)).toString();
    }
    setOut(ev, ev.string(title) + " " + dims + " " + ev.number(ev.at(vp, 1)).toString());
  } else if (ev.equals(name, "twice")) {
    let a = ev.getIn("props", "a");
    ev.replaceString(a, "first");
    ev.replaceString(a, "second");
  } else if (ev.equals(name, "undo")) {
    let a = ev.getIn("props", "a");
    let orig = ev.string(a);
    ev.replaceString(a, "changed");
    ev.replaceString(a, orig);
  } else if (ev.equals(name, "batch")) {
    setOut(ev, batchSize.toString() + "@" + ev.position.toString());
  } else if (ev.equals(name, "editdrop")) {
    ev.replaceString(ev.getIn("props", "a"), "changed");
    return Verdict.Drop;
  } else if (ev.equals(name, "members")) {
    setOut(ev, ev.memberCount().toString());
  }
  return Verdict.Keep;
});
