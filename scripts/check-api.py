#!/usr/bin/env python3
"""The public API of a crate as sorted text, from rustdoc's JSON output, and its comparison
with a committed snapshot. Run by scripts/check-api, which builds the JSON and states the
policy. Standard library only.

  check-api.py render JSON                               print the API text
  check-api.py update JSON SNAPSHOT PACKAGE [VERSION]    rewrite SNAPSHOT (its first line
      names VERSION, by default the crate's; without VERSION refused for a breaking change
      that the crate's version does not allow)
  check-api.py compare JSON SNAPSHOT PACKAGE VERSION-WHERE
      compare; on a difference exit 1 with the lines that differ and what to do (VERSION-WHERE
      says where the version is set, for that message)

One line per item, `PATH KIND DETAIL`, sorted; PATH is relative to the crate root (the
shortest public path of the item; other public paths get a `use` line). Kinds: mod, struct,
enum, variant, field, fn, trait, type, const, static, macro, use, impl. Signatures list the
argument types without their names (a renamed argument is not an API change). A type's
trait impls are listed, except blanket impls from other crates; of the auto traits, Send,
Sync, Unpin, UnwindSafe and RefUnwindSafe. Paths to other crates' items are shortened to
`crate::module::Name` (their first module), the prelude's names to the bare name.
"""
import json
import re
import sys

# The rustdoc JSON format this was written for (nightly 2026-05, format 57).
FORMAT = 57
AUTO_TRAITS = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe"}
# Implemented by derive(PartialEq); unstable, a detail of the compiler.
UNSTABLE_TRAITS = {"StructuralPartialEq"}
STD = {"std", "core", "alloc"}
PRELUDE = {
    "Option", "String", "Vec", "Box", "Send", "Sync", "Sized", "Unpin", "Clone", "Copy",
    "Default", "Drop", "Iterator", "IntoIterator", "DoubleEndedIterator", "ExactSizeIterator",
    "Extend", "FromIterator", "From", "Into", "TryFrom", "TryInto", "AsRef", "AsMut",
    "PartialEq", "Eq", "PartialOrd", "Ord", "ToString", "ToOwned", "Fn", "FnMut", "FnOnce",
}


class Api:
    def __init__(self, doc):
        self.doc = doc
        self.ix = doc["index"]
        self.paths = {}  # local item id -> its public paths
        self.lines = set()
        self.externs = []  # public re-exports of items outside the crate

    def item(self, i):
        return self.ix.get(str(i))

    # ---- public paths -------------------------------------------------------------------
    def walk(self, mid, prefix, seen):
        if mid in seen:
            return
        seen.add(mid)
        for i in self.item(mid)["inner"]["module"]["items"]:
            it = self.item(i)
            if it is None or it["visibility"] != "public":
                continue
            kind, inner = kind_of(it)
            if kind == "use":
                self.reexport(inner, prefix, seen)
            else:
                self.add_path(i, prefix + [it["name"]], seen)

    def reexport(self, use, prefix, seen):
        target = self.item(use["id"]) if use["id"] is not None else None
        if target is None or target["crate_id"] != 0:
            self.externs.append((prefix + [use["name"]], use))
        elif use["is_glob"]:
            self.walk(use["id"], prefix, seen)
        else:
            self.add_path(use["id"], prefix + [use["name"]], seen)

    def add_path(self, i, path, seen):
        self.paths.setdefault(i, []).append(path)
        it = self.item(i)
        if kind_of(it)[0] == "module":
            self.walk(i, path, seen)

    def canonical(self, i):
        ps = self.paths.get(i)
        if not ps:
            return None
        return "::".join(min(ps, key=lambda p: (len(p), p)))

    # ---- rendering of types -------------------------------------------------------------
    def name_of(self, i, written):
        """The name a path refers to: a local item's public path, another crate's
        `crate::module::Name`, the prelude's bare names."""
        c = self.canonical(i)
        if c is not None:
            return c
        s = self.doc["paths"].get(str(i))
        if s is None:
            return written
        p = list(s["path"])
        if s["crate_id"] == 0:
            # Nameable only through a private path: the API names something it does not
            # export. Shown as such.
            return "<private>::" + "::".join(p[1:])
        if p[0] in STD:
            if p[-1] in PRELUDE:
                return p[-1]
            p[0] = "std"
            if p[1] == "os" and len(p) > 4:  # std::os::fd::AsFd, std::os::unix::...
                return "::".join(p[:3] + p[-1:])
        return "::".join(p if len(p) <= 3 else [p[0], p[1], p[-1]])

    def path(self, p):
        return self.name_of(p["id"], p["path"]) + self.args(p.get("args"))

    def args(self, a):
        if not a:
            return ""
        if a == "return_type_notation":
            return "(..)"
        if "parenthesized" in a:
            pa = a["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in pa["inputs"]) + ")"
            return out + (" -> " + self.ty(pa["output"]) if pa["output"] else "")
        ab = a["angle_bracketed"]
        parts = [self.garg(g) for g in ab["args"]]
        for c in ab["constraints"]:
            b = c["binding"]
            head = c["name"] + self.args(c.get("args"))
            if "equality" in b:
                parts.append(head + " = " + self.term(b["equality"]))
            else:
                parts.append(head + ": " + self.bounds(b["constraint"]))
        return "<" + ", ".join(parts) + ">" if parts else ""

    def garg(self, g):
        if g == "infer":
            return "_"
        if "lifetime" in g:
            return g["lifetime"]
        if "type" in g:
            return self.ty(g["type"])
        return self.const(g["const"])

    def const(self, c):
        return c.get("value") or c.get("expr") or "_"

    def term(self, t):
        return self.ty(t["type"]) if "type" in t else self.const(t["constant"])

    def hrtb(self, params):
        return "for<" + ", ".join(self.gparam(p) for p in params) + "> " if params else ""

    def bound(self, b):
        if "outlives" in b:
            return b["outlives"]
        if "use" in b:
            return "use<" + ", ".join(u if isinstance(u, str) else next(iter(u.values()))
                                      for u in b["use"]) + ">"
        tb = b["trait_bound"]
        mod = {"none": "", "maybe": "?", "maybe_const": "[const] "}.get(tb["modifier"], "")
        return self.hrtb(tb["generic_params"]) + mod + self.path(tb["trait"])

    def bounds(self, bs):
        return " + ".join(self.bound(b) for b in bs)

    def ty(self, t):
        if t == "infer":
            return "_"
        (k, v), = t.items()
        if k == "resolved_path":
            return self.path(v)
        if k == "generic" or k == "primitive":
            return v
        if k == "borrowed_ref":
            lt = v["lifetime"] + " " if v["lifetime"] else ""
            return "&" + lt + ("mut " if v["is_mutable"] else "") + self.ty(v["type"])
        if k == "raw_pointer":
            return ("*mut " if v["is_mutable"] else "*const ") + self.ty(v["type"])
        if k == "slice":
            return "[" + self.ty(v) + "]"
        if k == "array":
            return "[" + self.ty(v["type"]) + "; " + v["len"] + "]"
        if k == "tuple":
            inner = ", ".join(self.ty(x) for x in v)
            return "(" + inner + ("," if len(v) == 1 else "") + ")"
        if k == "impl_trait":
            return "impl " + self.bounds(v)
        if k == "dyn_trait":
            parts = [self.hrtb(p["generic_params"]) + self.path(p["trait"]) for p in v["traits"]]
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if k == "function_pointer":
            return self.hrtb(v["generic_params"]) + self.header(v["header"]) + "fn" + \
                self.sig(v["sig"])
        if k == "qualified_path":
            name = v["name"] + self.args(v.get("args"))
            if v.get("trait") is None:
                return self.ty(v["self_type"]) + "::" + name
            return "<" + self.ty(v["self_type"]) + " as " + self.path(v["trait"]) + ">::" + name
        if k == "pat":
            return self.ty(v["type"])
        raise ValueError("unknown type kind " + k)

    # ---- generics and signatures --------------------------------------------------------
    def gparam(self, p):
        (k, v), = p["kind"].items()
        if k == "lifetime":
            return p["name"] + (": " + " + ".join(v["outlives"]) if v["outlives"] else "")
        if k == "type":
            out = p["name"] + (": " + self.bounds(v["bounds"]) if v["bounds"] else "")
            return out + (" = " + self.ty(v["default"]) if v["default"] else "")
        out = "const " + p["name"] + ": " + self.ty(v["type"])
        return out + (" = " + v["default"] if v.get("default") else "")

    def generics(self, g):
        ps = [self.gparam(p) for p in g["params"]
              if not (isinstance(p["kind"].get("type"), dict) and p["kind"]["type"]["is_synthetic"])]
        return "<" + ", ".join(ps) + ">" if ps else ""

    def where(self, g):
        preds = []
        for w in g["where_predicates"]:
            (k, v), = w.items()
            if k == "bound_predicate":
                preds.append(self.hrtb(v["generic_params"]) + self.ty(v["type"]) + ": " +
                             self.bounds(v["bounds"]))
            elif k == "lifetime_predicate":
                preds.append(v["lifetime"] + ": " + " + ".join(v["outlives"]))
            else:
                preds.append(self.ty(v["lhs"]) + " = " + self.term(v["rhs"]))
        return " where " + ", ".join(preds) if preds else ""

    def header(self, h):
        out = ("const " if h["is_const"] else "") + ("async " if h["is_async"] else "")
        out += "unsafe " if h["is_unsafe"] else ""
        abi = h["abi"]
        if abi != "Rust":
            name = abi if isinstance(abi, str) else next(iter(abi))
            out += 'extern "' + name + '" '
        return out

    def sig(self, s):
        args = []
        for name, t in s["inputs"]:
            if name == "self":
                if t == {"generic": "Self"}:
                    args.append("self")
                    continue
                r = t.get("borrowed_ref")
                if r and r["type"] == {"generic": "Self"}:
                    lt = r["lifetime"] + " " if r["lifetime"] else ""
                    args.append("&" + lt + ("mut " if r["is_mutable"] else "") + "self")
                    continue
                args.append("self: " + self.ty(t))
                continue
            args.append(self.ty(t))
        if s["is_c_variadic"]:
            args.append("...")
        out = "(" + ", ".join(args) + ")"
        return out + (" -> " + self.ty(s["output"]) if s["output"] is not None else "")

    def fn(self, f, suffix=""):
        return "fn " + self.header(f["header"]) + self.generics(f["generics"]) + \
            self.sig(f["sig"]) + self.where(f["generics"]) + suffix

    # ---- items --------------------------------------------------------------------------
    def emit(self, path, kind, detail=""):
        self.lines.add(path + " " + kind + (" " + detail if detail else ""))

    def render(self):
        root = self.doc["root"]
        self.walk(root, [], set())
        for path, use in self.externs:
            self.emit("::".join(path), "use", use["source"] + ("::*" if use["is_glob"] else ""))
        impls = set()
        for i, ps in self.paths.items():
            canon = self.canonical(i)
            it = self.item(i)
            kind, inner = kind_of(it)
            for p in ps:
                p = "::".join(p)
                if p != canon:
                    self.emit(p, "use", canon)
            self.item_lines(canon, it, kind, inner, impls)
        for imp in sorted(impls):
            self.impl_line(imp)
        return sorted(self.lines)

    def item_lines(self, path, it, kind, inner, impls):
        ne = "#[non_exhaustive]" if "non_exhaustive" in it["attrs"] else ""
        if kind == "module":
            self.emit(path, "mod")
        elif kind == "struct":
            sk = inner["kind"]
            g = self.generics(inner["generics"])
            w = self.where(inner["generics"])
            if sk == "unit":
                shape = ";"
            elif "tuple" in sk:
                shape = "(" + ", ".join(self.ty(kind_of(self.item(f))[1]) if f is not None else "_"
                                        for f in sk["tuple"]) + ")"
            else:
                pl = sk["plain"]
                shape = "{ .. }" if pl["has_stripped_fields"] else "{}"
                self.fields(path, pl["fields"])
            self.emit(path, "struct", " ".join(x for x in (ne + g, shape + w) if x))
            self.type_impls(inner["impls"], path, impls)
        elif kind == "union":
            self.emit(path, "union", " ".join(x for x in (ne, self.generics(inner["generics"])) if x))
            self.fields(path, inner["fields"])
            self.type_impls(inner["impls"], path, impls)
        elif kind == "enum":
            stripped = " (private variants)" if inner["has_stripped_variants"] else ""
            self.emit(path, "enum", " ".join(x for x in (ne, self.generics(inner["generics"]) +
                                     self.where(inner["generics"]) + stripped) if x))
            for v in inner["variants"]:
                self.variant(path, self.item(v))
            self.type_impls(inner["impls"], path, impls)
        elif kind == "function":
            self.emit(path, "fn", self.fn(inner)[3:])
        elif kind == "trait":
            head = ("unsafe " if inner["is_unsafe"] else "") + ("auto " if inner["is_auto"] else "")
            head += self.generics(inner["generics"])
            if inner["bounds"]:
                head += ": " + self.bounds(inner["bounds"])
            head += self.where(inner["generics"])
            head += "" if inner["is_dyn_compatible"] else " (not dyn-compatible)"
            self.emit(path, "trait", head.strip())
            for m in inner["items"]:
                self.assoc(path, self.item(m), trait=True)
            impls.update(inner["implementations"])
        elif kind == "type_alias":
            self.emit(path, "type", self.generics(inner["generics"]) + self.where(inner["generics"]) +
                      " = " + self.ty(inner["type"]))
        elif kind == "constant":
            self.emit(path, "const", self.ty(inner["type"]) + " = " + self.const(inner["const"]))
        elif kind == "static":
            self.emit(path, "static", ("mut " if inner["is_mutable"] else "") + self.ty(inner["type"]))
        elif kind in ("macro", "proc_macro"):
            self.emit(path, "macro")
        else:
            self.emit(path, kind)

    def fields(self, parent, ids):
        for f in ids:
            it = self.item(f)
            if it["visibility"] == "public" or it["visibility"] == "default":
                self.emit(parent + "." + it["name"], "field", self.ty(kind_of(it)[1]))

    def variant(self, enum, it):
        v = kind_of(it)[1]
        path = enum + "::" + it["name"]
        ne = "#[non_exhaustive] " if "non_exhaustive" in it["attrs"] else ""
        k = v["kind"]
        if k == "plain":
            shape = ""
        elif "tuple" in k:
            shape = "(" + ", ".join(self.ty(kind_of(self.item(f))[1]) if f is not None else "_"
                                    for f in k["tuple"]) + ")"
        else:
            shape = "{ .. }" if k["struct"]["has_stripped_fields"] else "{}"
            self.fields(path, k["struct"]["fields"])
        disc = " = " + v["discriminant"]["value"] if v.get("discriminant") else ""
        self.emit(path, "variant", (ne + shape + disc).strip())

    def assoc(self, parent, it, trait=False, suffix=""):
        kind, inner = kind_of(it)
        path = parent + "::" + it["name"]
        if kind == "function":
            role = (" [provided]" if inner["has_body"] else " [required]") if trait else ""
            self.emit(path, "fn", self.fn(inner, role + suffix)[3:])
        elif kind == "assoc_const":
            val = " = " + inner["value"] if inner.get("value") else ""
            role = (" [provided]" if inner.get("value") else " [required]") if trait else ""
            self.emit(path, "const", self.ty(inner["type"]) + (val if not trait else "") + role + suffix)
        elif kind == "assoc_type":
            b = ": " + self.bounds(inner["bounds"]) if inner["bounds"] else ""
            d = " = " + self.ty(inner["type"]) if inner.get("type") else ""
            role = (" [provided]" if inner.get("type") else " [required]") if trait else ""
            self.emit(path, "type", (self.generics(inner["generics"]) + b + d + role + suffix).strip())

    def type_impls(self, ids, path, impls):
        for i in ids:
            imp = kind_of(self.item(i))[1]
            if imp["trait"] is None:
                g = imp["generics"]
                suffix = ""
                if g["params"] or g["where_predicates"]:
                    suffix = " [in impl" + self.generics(g) + " " + self.ty(imp["for"]) + self.where(g) + "]"
                for m in imp["items"]:
                    it = self.item(m)
                    if it["visibility"] == "public":
                        self.assoc(path, it, suffix=suffix)
            else:
                impls.add(i)

    def impl_line(self, i):
        imp = kind_of(self.item(i))[1]
        if imp["blanket_impl"] is not None:
            return
        tr = self.path(imp["trait"])
        trait_name = self.name_of(imp["trait"]["id"], imp["trait"]["path"])
        last = trait_name.rsplit("::", 1)[-1]
        if imp["is_synthetic"] and last not in AUTO_TRAITS:
            return  # the unstable auto traits (Freeze, UnsafeUnpin) vary with the nightly
        if last in UNSTABLE_TRAITS:
            return
        for_ = imp["for"]
        owner = None
        t = for_
        while "borrowed_ref" in t or "slice" in t or "raw_pointer" in t:
            (_, v), = t.items()
            t = v if "slice" in t else v["type"]
        if "resolved_path" in t:
            owner = self.canonical(t["resolved_path"]["id"])
        if owner is None:
            owner = self.canonical(imp["trait"]["id"]) or trait_name
        g = imp["generics"]
        head = ("unsafe " if imp["is_unsafe"] else "") + "impl" + self.generics(g) + " "
        head += ("!" if imp["is_negative"] else "") + tr
        ft = self.ty(for_)
        if ft != owner:
            head += " for " + ft
        head += self.where(g)
        types = []
        for m in imp["items"]:
            it = self.item(m)
            k, inner = kind_of(it)
            if k == "assoc_type":
                types.append("type " + it["name"] + " = " + self.ty(inner["type"]))
        if types:
            head += " { " + "; ".join(sorted(types)) + " }"
        self.lines.add(owner + " " + head)


def kind_of(it):
    (k, v), = it["inner"].items()
    return k, v


def render(json_path):
    doc = json.load(open(json_path))
    fmt = doc.get("format_version")
    try:
        lines = Api(doc).render()
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        sys.exit(f"check-api: cannot read rustdoc JSON format {fmt} (written for {FORMAT}): "
                 f"{type(e).__name__}: {e}")
    return doc, lines


# ---- versions and the comparison ----------------------------------------------------------
def parse_version(v):
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        sys.exit(f"check-api: cannot read version {v!r}")
    return tuple(int(x) for x in m.groups())


def compat(v):
    """The part of a version that semver-compatible releases share (Cargo's rule: the
    leftmost non-zero component and those before it)."""
    if v[0]:
        return v[:1]
    if v[1]:
        return v[:2]
    return v


def next_breaking(v):
    if v[0]:
        return f"{v[0] + 1}.0.0"
    if v[1]:
        return f"0.{v[1] + 1}.0"
    return f"0.0.{v[2] + 1}"


def next_addition(v):
    if v[0]:
        return f"{v[0]}.{v[1] + 1}.0"
    if v[1]:
        return f"0.{v[1]}.{v[2] + 1}"
    return f"0.0.{v[2] + 1}"


def header(package, version):
    return (f"# {package} {version}: public API (scripts/check-api); a breaking change needs a "
            f"version incompatible with {version}\n"
            "# One line per item: PATH KIND DETAIL. A struct's {} has only the public fields listed,\n"
            "# { .. } private ones too; fn lines give argument types, not names.\n")


def read_snapshot(path):
    try:
        text = open(path).read().splitlines()
    except FileNotFoundError:
        return None, []
    m = re.match(r"^# (\S+) (\S+): ", text[0]) if text else None
    if not m:
        sys.exit(f"check-api: {path}: the first line does not name the crate version")
    return m.group(2), [ln for ln in text[1:] if ln and not ln.startswith("#")]


def parse(line):
    path, kind, *rest = line.split(" ", 2)
    return path, kind, rest[0] if rest else ""


def breaking_additions(added, old):
    """Added lines that break users all the same: a public field on a struct or variant
    they could build or match exhaustively, a variant on an exhaustive enum, an item a
    trait's implementors must now provide."""
    olds = {}
    for ln in old:
        p, k, d = parse(ln)
        if k in ("struct", "variant", "enum", "trait"):
            olds[p] = (k, d)
    out = []
    for ln in added:
        p, k, d = parse(ln)
        if k == "field":
            parent = p.rsplit(".", 1)[0]
            if parent in olds:
                _, pd = olds[parent]
                if "#[non_exhaustive]" not in pd and "{ .. }" not in pd:
                    out.append((ln, f"a public field on {parent}, which users can build or "
                                    "destructure exhaustively"))
        elif k == "variant":
            parent = p.rsplit("::", 1)[0]
            if parent in olds and olds[parent][0] == "enum" and \
                    "#[non_exhaustive]" not in olds[parent][1]:
                out.append((ln, f"a variant of {parent}, which users can match exhaustively"))
        elif k in ("fn", "type", "const") and d.endswith("[required]"):
            parent = p.rsplit("::", 1)[0]
            if parent in olds and olds[parent][0] == "trait":
                out.append((ln, f"a required item of trait {parent}: its implementors break"))
    return out


USAGE = """usage: check-api.py render JSON
       check-api.py update JSON SNAPSHOT PACKAGE [VERSION]
       check-api.py compare JSON SNAPSHOT PACKAGE VERSION-WHERE"""


def main():
    a = sys.argv[1:]
    if not a or (a[0], len(a)) not in (("render", 2), ("update", 4), ("update", 5), ("compare", 5)):
        sys.exit(USAGE)
    doc, lines = render(a[1])
    version = doc["crate_version"]
    if a[0] == "render":
        sys.stdout.write("".join(ln + "\n" for ln in lines))
        return
    snap, package = a[2], a[3]
    if a[0] == "update":
        update(doc, lines, snap, package, version, a[4] if len(a) == 5 else None)
    else:
        compare(doc, lines, snap, package, version, a[4])


def differences(old, lines):
    old_set, new_set = set(old), set(lines)
    removed = sorted(old_set - new_set)
    added = sorted(new_set - old_set)
    return removed, added, breaking_additions(added, old)


def show(removed, added, worse, err):
    for _, _, ln in sorted([(parse(ln)[0], 0, "- " + ln) for ln in removed] +
                           [(parse(ln)[0], 1, "+ " + ln) for ln in added]):
        print("  " + ln, file=err)
    for ln, why in worse:
        print(f"  breaking addition, {why}:\n    {ln}", file=err)


def update(doc, lines, snap, package, version, since):
    """Rewrite the snapshot; refused for a breaking change without a breaking version bump
    unless SINCE (the version to record instead of the crate's) is given."""
    if since is not None:
        parse_version(since)
        version = since
    else:
        snap_version, old = read_snapshot(snap)
        if snap_version is not None:
            removed, added, worse = differences(old, lines)
            v, s = parse_version(version), parse_version(snap_version)
            if (removed or worse) and compat(v) == compat(s):
                print(f"check-api: {snap} not updated: a BREAKING change, and {package} "
                      f"{version} is semver-compatible with {snap_version}, the snapshot's "
                      f"version:", file=sys.stderr)
                show(removed, added, worse, sys.stderr)
                print(f"check-api: bump the version to {next_breaking(s)} first. If "
                      f"{snap_version} was never published, record the last published version "
                      f"instead: scripts/check-api --update --since VERSION (0.0.0 before the "
                      f"first publication).", file=sys.stderr)
                sys.exit(1)
    with open(snap, "w") as f:
        f.write(header(package, version))
        f.writelines(ln + "\n" for ln in lines)
    print(f"check-api: wrote {snap}: {package} {version}, {len(lines)} lines")


def compare(doc, lines, snap, package, version, where):
    snap_version, old = read_snapshot(snap)
    if snap_version is None:
        sys.exit(f"check-api: {snap} does not exist: run scripts/check-api --update, review it "
                 "and commit it")
    fmt_note = ""
    if doc.get("format_version") != FORMAT:
        fmt_note = (f" (Note: rustdoc JSON format {doc.get('format_version')}; this script was "
                    f"written for {FORMAT}: a difference may come from the toolchain, not the code.)")
    removed, added, worse = differences(old, lines)
    if not removed and not added:
        note = "" if snap_version == version else \
            f" (snapshot version {snap_version}, the crate is now {version})"
        print(f"check-api: {package} {version}: public API as in {snap}{note}, {len(lines)} lines")
        return
    err = sys.stderr
    print(f"check-api: {package} {version}: the public API differs from {snap} (snapshot "
          f"version {snap_version}); '-' is an item removed or changed, '+' one added or changed:", file=err)
    show(removed, added, worse, err)
    v, s = parse_version(version), parse_version(snap_version)
    update = f"then run scripts/check-api --update and commit {snap}.{fmt_note}"
    if v < s:
        print(f"check-api: the crate's version {version} is lower than the snapshot's "
              f"{snap_version}.", file=err)
    elif (removed or worse) and compat(v) == compat(s):
        print(f"check-api: BREAKING: {version} is semver-compatible with {snap_version}, the "
              f"snapshot's version. Undo the change, or bump the version to "
              f"{next_breaking(s)} ({where}), {update}", file=err)
    elif removed or worse:
        print(f"check-api: breaking, and allowed: {version} is a breaking release after "
              f"{snap_version}. Review the lines above, {update}", file=err)
    else:
        print(f"check-api: additions only, compatible (the release that ships them is "
              f"{next_addition(s)} or later). Review the lines above, {update}", file=err)
    sys.exit(1)


if __name__ == "__main__":
    main()
