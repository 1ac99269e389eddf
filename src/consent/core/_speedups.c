/* Optional compiled versions of the two loops every request runs.
 *
 * Each function here has a pure-Python twin that defines its behaviour
 * (consent/core/response.py); tests check both against each other on random
 * input. Whenever an input is not the plain shape the fast path handles (an
 * item that is not a 2-tuple of bytes, say), the function hands the whole call
 * to the Python twin, so results never differ. Nothing here keeps state.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static PyObject *str_granted; /* "granted", interned once */
static PyObject *one;         /* the int 1 */
static PyObject *empty_bytes; /* b"" */
static PyObject *time_time;   /* time.time */

static int
equal_lower(const char *s, Py_ssize_t n, const char *lower, Py_ssize_t m)
{
    /* Whether s (any ASCII case) spells lower, which is all lowercase. */
    if (n != m)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lower[i])
            return 0;
    }
    return 1;
}

static int
is_space(char c)
{
    /* What bytes.strip() removes. */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

/* read_request(headers, gpc_enabled) -> (cookie, gpc, accept_language) or None
 *
 * The Cookie headers joined with "; " (HTTP/2 may split them), whether a
 * Sec-GPC header says exactly "1", and the last Accept-Language header (or
 * None). None when an item is not a 2-tuple of bytes.
 */
/* read_request's work: 1 with *cookie (a new reference), *gpc_out and
 * *language (new references; language is Py_None without the header) set; 0 for the Python
 * twin's input; -1 on an error. */
static int
read_request_impl(PyObject *headers, int gpc_enabled, PyObject **cookie_out, int *gpc_out,
                  PyObject **language_out)
{
    PyObject *seq = PySequence_Fast(headers, "headers must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *cookie = NULL; /* the one Cookie header, borrowed, while there is one */
    PyObject *joined = NULL; /* owned, once there are several */
    int gpc = 0;
    PyObject *language = Py_None; /* borrowed */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            goto fallback;
        PyObject *k = PyTuple_GET_ITEM(item, 0);
        PyObject *v = PyTuple_GET_ITEM(item, 1);
        if (!PyBytes_CheckExact(k) || !PyBytes_CheckExact(v))
            goto fallback;
        Py_ssize_t kn = PyBytes_GET_SIZE(k);
        const char *ks = PyBytes_AS_STRING(k);
        if (kn == 6 && memcmp(ks, "cookie", 6) == 0) {
            if (cookie == NULL && joined == NULL) {
                if (PyBytes_GET_SIZE(v) == 0)
                    continue; /* as in Python: b"" then stands for "none yet" */
                cookie = v;
                continue;
            }
            if (joined == NULL) {
                joined = cookie;
                Py_INCREF(joined);
                cookie = NULL;
            }
            PyObject *sep = PyBytes_FromStringAndSize("; ", 2);
            if (sep == NULL)
                goto error;
            PyBytes_ConcatAndDel(&joined, sep);
            if (joined == NULL)
                goto error;
            PyBytes_Concat(&joined, v);
            if (joined == NULL)
                goto error;
        }
        else if (kn == 15 && memcmp(ks, "accept-language", 15) == 0) {
            language = v;
        }
        else if (kn == 7 && memcmp(ks, "sec-gpc", 7) == 0) {
            const char *vs = PyBytes_AS_STRING(v);
            Py_ssize_t a = 0, b = PyBytes_GET_SIZE(v);
            while (a < b && is_space(vs[a]))
                a++;
            while (b > a && is_space(vs[b - 1]))
                b--;
            if (b - a == 1 && vs[a] == '1')
                gpc = gpc_enabled;
        }
    }
    PyObject *value = joined != NULL ? joined : cookie;
    if (value == NULL)
        value = Py_NewRef(empty_bytes);
    else if (joined == NULL)
        Py_INCREF(value);
    Py_DECREF(seq);
    *cookie_out = value;
    *gpc_out = gpc;
    *language_out = Py_NewRef(language);
    return 1;

fallback:
    Py_XDECREF(joined);
    Py_DECREF(seq);
    return 0;
error:
    Py_XDECREF(joined);
    Py_DECREF(seq);
    return -1;
}

static PyObject *
read_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read_request(headers, gpc_enabled)");
        return NULL;
    }
    int gpc_enabled = PyObject_IsTrue(args[1]);
    if (gpc_enabled < 0)
        return NULL;
    PyObject *cookie, *language;
    int gpc;
    int got = read_request_impl(args[0], gpc_enabled, &cookie, &gpc, &language);
    if (got <= 0)
        return got < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *result = PyTuple_New(3);
    if (result == NULL) {
        Py_DECREF(cookie);
        Py_DECREF(language);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, cookie);
    PyTuple_SET_ITEM(result, 1, Py_NewRef(gpc ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 2, language);
    return result;
}

/* Counts one blocked name into `counts` (a dict), as BlockedCookies does: at
 * most `limit` distinct names; later names are left out once it is full. */
static int
count_blocked(PyObject *counts, Py_ssize_t limit, PyObject *name)
{
    PyObject *seen = PyDict_GetItemWithError(counts, name); /* borrowed */
    if (seen == NULL) {
        if (PyErr_Occurred())
            return -1;
        if (PyDict_GET_SIZE(counts) >= limit)
            return 0;
        return PyDict_SetItem(counts, name, one);
    }
    PyObject *more = PyNumber_Add(seen, one);
    if (more == NULL)
        return -1;
    int r = PyDict_SetItem(counts, name, more);
    Py_DECREF(more);
    return r;
}

static PyObject *filter_head_impl(PyObject *const *args, Py_ssize_t nargs, int want_blocked);

/* -- The memo: answers of the policy's caches, by the bytes they were asked for.
 *
 * A response's Set-Cookie names, attribute strings and Content-Type come as new
 * bytes objects every time; a dict lookup needs a bytes object for each and
 * hashes it. The memo looks the bytes up where they lie, in direct-mapped
 * slots (FNV-1a), and keeps what the policy's cache answered. The answers
 * depend only on the bytes and the policy, so a slot is replaced, never
 * invalidated. It holds bytes, str and bool objects only: no reference cycles.
 */
#define MEMO_NAME "consent.core._speedups.memo"
enum { NAMES = 256, DELETES = 128, HTML = 32 };

typedef struct {
    PyObject *key; /* bytes */
    PyObject *value;
} Slot;

typedef struct {
    Slot names[NAMES];
    Slot deletes[DELETES];
    Slot html[HTML];
} Memo;

static Py_ssize_t
memo_index(const char *s, Py_ssize_t n, Py_ssize_t size)
{
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return (Py_ssize_t)(h & (uint32_t)(size - 1));
}

static PyObject *
memo_get(Slot *slots, Py_ssize_t size, const char *s, Py_ssize_t n)
{
    Slot *slot = &slots[memo_index(s, n, size)];
    if (slot->key != NULL && PyBytes_GET_SIZE(slot->key) == n &&
        memcmp(PyBytes_AS_STRING(slot->key), s, (size_t)n) == 0)
        return slot->value; /* borrowed */
    return NULL;
}

static int
memo_put(Slot *slots, Py_ssize_t size, PyObject *key, PyObject *value)
{
    Slot *slot = &slots[memo_index(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), size)];
    PyObject *old_key = slot->key, *old_value = slot->value;
    slot->key = Py_NewRef(key);
    slot->value = Py_NewRef(value);
    Py_XDECREF(old_key);
    Py_XDECREF(old_value);
    return 0;
}

static void
memo_free(PyObject *capsule)
{
    Memo *memo = PyCapsule_GetPointer(capsule, MEMO_NAME);
    if (memo == NULL)
        return;
    Slot *all[3] = {memo->names, memo->deletes, memo->html};
    Py_ssize_t sizes[3] = {NAMES, DELETES, HTML};
    for (int t = 0; t < 3; t++) {
        for (Py_ssize_t i = 0; i < sizes[t]; i++) {
            Py_XDECREF(all[t][i].key);
            Py_XDECREF(all[t][i].value);
        }
    }
    PyMem_Free(memo);
}

/* new_memo() -> capsule: the last entry of CookiePolicy._fast_tables(). */
static PyObject *
new_memo(PyObject *self, PyObject *unused)
{
    Memo *memo = PyMem_Calloc(1, sizeof(Memo));
    if (memo == NULL)
        return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(memo, MEMO_NAME, memo_free);
    if (capsule == NULL)
        PyMem_Free(memo);
    return capsule;
}

/* filter_head(tables, headers, state, expire) -> (headers, blocked, maybe_html)
 *
 * CookiePolicy.filter_head (consent/core/response.py) in C. ``tables`` is the
 * tuple CookiePolicy._fast_tables() builds once: (names, display, verdict,
 * deletes, always, html, is_html, fallback, deletions, counts, limit, memo). The
 * caches are the policy's own dicts; a miss calls back into the policy. Each
 * blocked name is counted into BlockedCookies' counts at once, within its
 * limit, as its fold does for the names the Python code appends. `memo` (from
 * new_memo()) keeps the verdicts, deletions and HTML answers looked up before
 * by their bytes, without a bytes object or a hash per lookup.
 */
static PyObject *
filter_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return filter_head_impl(args, nargs, 1);
}

/* filter_head; without the list of blocked names (None in its place) unless
 * want_blocked: the ASGI Relay only needs them counted. */
static PyObject *
filter_head_impl(PyObject *const *args, Py_ssize_t nargs, int want_blocked)
{
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "filter_head(tables, headers, state[, expire])");
        return NULL;
    }
    PyObject *tables = args[0];
    PyObject *headers = args[1];
    PyObject *state = args[2];
    PyObject *expire = nargs == 4 ? args[3] : NULL;
    if (!PyTuple_CheckExact(tables) || PyTuple_GET_SIZE(tables) != 12 ||
        !PyCapsule_IsValid(PyTuple_GET_ITEM(tables, 11), MEMO_NAME)) {
        PyErr_SetString(PyExc_TypeError, "tables must be what CookiePolicy.use_speedups() builds");
        return NULL;
    }
    PyObject *names = PyTuple_GET_ITEM(tables, 0);
    PyObject *display = PyTuple_GET_ITEM(tables, 1);
    PyObject *verdict_fn = PyTuple_GET_ITEM(tables, 2);
    PyObject *deletes_fn = PyTuple_GET_ITEM(tables, 3);
    PyObject *always = PyTuple_GET_ITEM(tables, 4);
    PyObject *html_cache = PyTuple_GET_ITEM(tables, 5);
    PyObject *is_html_fn = PyTuple_GET_ITEM(tables, 6);
    PyObject *fallback = PyTuple_GET_ITEM(tables, 7);
    PyObject *deletions = PyTuple_GET_ITEM(tables, 8);
    PyObject *counts = PyTuple_GET_ITEM(tables, 9);
    Memo *memo = PyCapsule_GetPointer(PyTuple_GET_ITEM(tables, 11), MEMO_NAME);
    Py_ssize_t limit = PyLong_Check(PyTuple_GET_ITEM(tables, 10))
                           ? PyLong_AsSsize_t(PyTuple_GET_ITEM(tables, 10))
                           : -1;
    if (!PyDict_CheckExact(names) || !PyDict_CheckExact(display) ||
        !PyDict_CheckExact(html_cache) || !PyDict_CheckExact(deletions) ||
        !PyDict_Check(counts) || limit < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "tables must be what CookiePolicy.use_speedups() builds");
        return NULL;
    }
    PyObject *snap; /* the items, in a tuple no callback can resize */
    if (PyTuple_CheckExact(headers)) {
        snap = headers;
        Py_INCREF(snap);
    }
    else if (PyList_CheckExact(headers)) {
        snap = PyList_AsTuple(headers);
        if (snap == NULL)
            return NULL;
    }
    else {
        goto fallback_only;
    }
    PyObject *granted = NULL, *out = NULL, *blocked = NULL, *html = NULL;
    PyObject *entry = NULL; /* the Set-Cookie name's (verdict, name for reports) */
    PyObject *ctype = NULL; /* borrowed from snap */
    Py_ssize_t n = PyTuple_GET_SIZE(snap);
    PyObject **items = &PyTuple_GET_ITEM(snap, 0);
    /* The items must all be plain before anything is decided. */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 0)) ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 1))) {
            Py_DECREF(snap);
            goto fallback_only;
        }
    }
    if (want_blocked) {
        blocked = PyList_New(0);
        if (blocked == NULL) {
            Py_DECREF(snap);
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_CLEAR(entry);
        PyObject *item = items[i];
        PyObject *k = PyTuple_GET_ITEM(item, 0);
        PyObject *v = PyTuple_GET_ITEM(item, 1);
        Py_ssize_t kn = PyBytes_GET_SIZE(k);
        const char *ks = PyBytes_AS_STRING(k);
        if (kn == 10 && equal_lower(ks, kn, "set-cookie", 10)) {
            const char *vs = PyBytes_AS_STRING(v);
            Py_ssize_t vn = PyBytes_GET_SIZE(v);
            const char *eq = memchr(vs, '=', (size_t)vn);
            Py_ssize_t rn = eq == NULL ? vn : (Py_ssize_t)(eq - vs);
            /* (verdict, name for reports) for the name as sent: from the memo,
             * else from the policy's caches (verdict() fills both on a miss). */
            /* Held while it is used: a deletion check below may run Python code,
             * during which another thread can replace this memo slot. */
            entry = Py_XNewRef(memo_get(memo->names, NAMES, vs, rn));
            if (entry == NULL) {
                PyObject *raw = rn == vn ? Py_NewRef(v) : PyBytes_FromStringAndSize(vs, rn);
                if (raw == NULL)
                    goto error;
                PyObject *verdict = PyDict_GetItemWithError(names, raw);
                if (verdict != NULL)
                    Py_INCREF(verdict);
                else if (!PyErr_Occurred())
                    verdict = PyObject_CallOneArg(verdict_fn, raw);
                PyObject *name = verdict == NULL ? NULL : PyDict_GetItemWithError(display, raw);
                if (name == NULL) {
                    if (verdict != NULL && !PyErr_Occurred())
                        PyErr_SetObject(PyExc_KeyError, raw);
                    Py_XDECREF(verdict);
                    Py_DECREF(raw);
                    goto error;
                }
                entry = PyTuple_Pack(2, verdict, name);
                Py_DECREF(verdict);
                if (entry == NULL || memo_put(memo->names, NAMES, raw, entry) < 0) {
                    Py_DECREF(raw);
                    goto error;
                }
                Py_DECREF(raw);
            }
            PyObject *verdict = PyTuple_GET_ITEM(entry, 0);
            int keep = verdict == always;
            if (!keep) {
                if (granted == NULL) {
                    granted = PyObject_GetAttr(state, str_granted);
                    if (granted == NULL)
                        goto error;
                }
                keep = PySequence_Contains(granted, verdict);
                if (keep == 0) {
                    /* A deletion always passes; the answer is cached per attribute
                     * string (all after the first ";"), as CookiePolicy._deletes does. */
                    const char *semi = memchr(vs, ';', (size_t)vn);
                    const char *as = semi == NULL ? vs + vn : semi + 1;
                    Py_ssize_t an = vn - (as - vs);
                    PyObject *d = memo_get(memo->deletes, DELETES, as, an);
                    if (d != NULL) {
                        keep = d == Py_True ? 1 : PyObject_IsTrue(d);
                    }
                    else {
                        PyObject *attrs = PyBytes_FromStringAndSize(as, an);
                        if (attrs == NULL)
                            goto error;
                        d = PyDict_GetItemWithError(deletions, attrs);
                        if (d != NULL)
                            Py_INCREF(d);
                        else if (!PyErr_Occurred())
                            d = PyObject_CallOneArg(deletes_fn, v);
                        keep = d == NULL ? -1 : PyObject_IsTrue(d);
                        if (keep >= 0 && memo_put(memo->deletes, DELETES, attrs, d) < 0)
                            keep = -1;
                        Py_XDECREF(d);
                        Py_DECREF(attrs);
                    }
                }
            }
            if (keep < 0)
                goto error;
            if (!keep) {
                if (out == NULL) {
                    out = PyList_New(i);
                    if (out == NULL)
                        goto error;
                    for (Py_ssize_t j = 0; j < i; j++) {
                        Py_INCREF(items[j]);
                        PyList_SET_ITEM(out, j, items[j]);
                    }
                }
                PyObject *name = PyTuple_GET_ITEM(entry, 1);
                if (count_blocked(counts, limit, name) < 0)
                    goto error;
                if (blocked != NULL && PyList_Append(blocked, name) < 0)
                    goto error;
                continue;
            }
        }
        else if (kn == 12 && equal_lower(ks, kn, "content-type", 12)) {
            ctype = v;
        }
        if (out != NULL && PyList_Append(out, item) < 0)
            goto error;
    }
    Py_CLEAR(entry);
    if (expire != NULL) {
        Py_ssize_t en = PyObject_Length(expire);
        if (en < 0)
            goto error;
        if (en > 0) {
            if (out == NULL) {
                out = PySequence_List(headers);
                if (out == NULL)
                    goto error;
            }
            PyObject *it = PyObject_GetIter(expire);
            if (it == NULL)
                goto error;
            PyObject *value;
            while ((value = PyIter_Next(it)) != NULL) {
                PyObject *pair = Py_BuildValue("(y#N)", "set-cookie", (Py_ssize_t)10, value);
                if (pair == NULL || PyList_Append(out, pair) < 0) {
                    Py_XDECREF(pair);
                    Py_DECREF(it);
                    goto error;
                }
                Py_DECREF(pair);
            }
            Py_DECREF(it);
            if (PyErr_Occurred())
                goto error;
        }
    }
    {
        const char *cs = ctype == NULL ? "" : PyBytes_AS_STRING(ctype);
        Py_ssize_t cn = ctype == NULL ? 0 : PyBytes_GET_SIZE(ctype);
        html = memo_get(memo->html, HTML, cs, cn);
        if (html != NULL) {
            Py_INCREF(html);
        }
        else {
            PyObject *key = ctype == NULL ? Py_NewRef(empty_bytes) : Py_NewRef(ctype);
            html = PyDict_GetItemWithError(html_cache, key);
            if (html != NULL) {
                Py_INCREF(html);
            }
            else if (!PyErr_Occurred()) {
                html = PyObject_CallOneArg(is_html_fn, key);
                if (html != NULL) {
                    if (PyDict_GET_SIZE(html_cache) >= 64)
                        PyDict_Clear(html_cache);
                    if (PyDict_SetItem(html_cache, key, html) < 0)
                        Py_CLEAR(html);
                }
            }
            if (html != NULL && memo_put(memo->html, HTML, key, html) < 0)
                Py_CLEAR(html);
            Py_DECREF(key);
            if (html == NULL)
                goto error;
        }
    }
    Py_XDECREF(granted);
    Py_DECREF(snap);
    if (blocked == NULL)
        blocked = Py_NewRef(Py_None);
    PyObject *result = PyTuple_New(3);
    if (result == NULL) {
        Py_XDECREF(out);
        Py_DECREF(blocked);
        Py_DECREF(html);
        return NULL;
    }
    if (out == NULL) {
        out = headers;
        Py_INCREF(out);
    }
    PyTuple_SET_ITEM(result, 0, out);
    PyTuple_SET_ITEM(result, 1, blocked);
    PyTuple_SET_ITEM(result, 2, html);
    return result;

error:
    Py_DECREF(snap);
    Py_XDECREF(entry);
    Py_XDECREF(granted);
    Py_XDECREF(out);
    Py_XDECREF(blocked);
    Py_XDECREF(html);
    return NULL;

fallback_only:
    if (expire != NULL)
        return PyObject_CallFunctionObjArgs(fallback, headers, state, expire, NULL);
    return PyObject_CallFunctionObjArgs(fallback, headers, state, NULL);
}

/* inject_page(page, body, head, window) -> bytes or None
 *
 * consent.core.inject.inject_page for the usual page: the head snippet right
 * after the first <head> tag (which must end within `window` bytes), the body
 * snippet before the last </body> (any case; at the end when there is none, or
 * when it is more than `window` bytes before the end), in one allocation. None
 * when a comment, or a quote inside the <head ...> tag, comes first, or the
 * tag follows the </body>: the Python code then places the snippets.
 */
static PyObject *
inject_page(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "inject_page(page, body, head, window)");
        return NULL;
    }
    PyObject *page = args[0], *body = args[1], *head = args[2];
    if (!PyBytes_CheckExact(page) || !PyBytes_CheckExact(body) || !PyBytes_CheckExact(head))
        Py_RETURN_NONE;
    Py_ssize_t window = PyLong_AsSsize_t(args[3]);
    if (window == -1 && PyErr_Occurred())
        return NULL;
    const char *p = PyBytes_AS_STRING(page);
    Py_ssize_t n = PyBytes_GET_SIZE(page);
    Py_ssize_t bn = PyBytes_GET_SIZE(body), hn = PyBytes_GET_SIZE(head);

    /* The last </body>, in any case. */
    Py_ssize_t c = -1;
    for (Py_ssize_t i = n - 7; i >= 0; i--) {
        if (p[i] == '<' && p[i + 1] == '/' && p[i + 6] == '>' && equal_lower(p + i + 2, 4, "body", 4)) {
            c = i;
            break;
        }
    }
    if (c < 0 || n - c > window)
        c = n;

    Py_ssize_t h = -1; /* where the head snippet goes; -1: with the body snippet */
    if (hn > 0) {
        Py_ssize_t end = window < n ? window : n;
        Py_ssize_t i = 0;
        while (i < end) {
            const char *lt = memchr(p + i, '<', (size_t)(end - i));
            if (lt == NULL)
                break;
            Py_ssize_t at = lt - p;
            if (at + 4 <= end && p[at + 1] == '!' && p[at + 2] == '-' && p[at + 3] == '-')
                Py_RETURN_NONE; /* a comment first */
            if (at + 6 <= end && equal_lower(p + at + 1, 4, "head", 4)) {
                char next = p[at + 5];
                if (next == '\t' || next == '\n' || next == '\x0c' || next == '\r' || next == ' ' ||
                    next == '/' || next == '>') {
                    Py_ssize_t j = at + 5;
                    while (j < end && p[j] != '>' && p[j] != '"' && p[j] != '\'')
                        j++;
                    if (j == end || p[j] != '>')
                        Py_RETURN_NONE; /* a quote inside the tag, or it ends past the window */
                    h = j + 1;
                    break;
                }
            }
            i = at + 1;
        }
        if (h > c)
            Py_RETURN_NONE;
    }

    PyObject *out = PyBytes_FromStringAndSize(NULL, n + bn + hn);
    if (out == NULL)
        return NULL;
    char *o = PyBytes_AS_STRING(out);
    const char *hs = PyBytes_AS_STRING(head), *bs = PyBytes_AS_STRING(body);
    if (h < 0) { /* page[:c] head body page[c:] (head may be empty) */
        memcpy(o, p, (size_t)c);
        o += c;
        memcpy(o, hs, (size_t)hn);
        o += hn;
    }
    else { /* page[:h] head page[h:c] body page[c:] */
        memcpy(o, p, (size_t)h);
        o += h;
        memcpy(o, hs, (size_t)hn);
        o += hn;
        memcpy(o, p + h, (size_t)(c - h));
        o += c - h;
    }
    memcpy(o, bs, (size_t)bn);
    o += bn;
    memcpy(o, p + c, (size_t)(n - c));
    return out;
}

/* page_facts(headers) -> (content_type, (length_at, vary_at, etag_at)) or None
 *
 * The part of consent.core.inject.plan_page that reads the headers, for the
 * usual page: content_type is the Content-Type value (None when absent), and
 * the indexes say where Content-Length, Vary and ETag are (-1: absent). None
 * when anything needs the Python code: a name it looks at twice, a
 * Content-Security-Policy, Content-Encoding, Content-Range or
 * Content-Disposition header, or items that are not 2-tuples of bytes.
 */
static PyObject *
page_facts(PyObject *self, PyObject *arg)
{
    if (!PyList_CheckExact(arg) && !PyTuple_CheckExact(arg))
        Py_RETURN_NONE;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(arg);
    PyObject **items = PySequence_Fast_ITEMS(arg);
    PyObject *ctype = NULL;
    Py_ssize_t length_at = -1, vary_at = -1, etag_at = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            Py_RETURN_NONE;
        PyObject *k = PyTuple_GET_ITEM(item, 0);
        if (!PyBytes_CheckExact(k) || !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 1)))
            Py_RETURN_NONE;
        const char *ks = PyBytes_AS_STRING(k);
        switch (PyBytes_GET_SIZE(k)) {
        case 4:
            if (equal_lower(ks, 4, "vary", 4)) {
                if (vary_at >= 0)
                    Py_RETURN_NONE;
                vary_at = i;
            }
            else if (equal_lower(ks, 4, "etag", 4)) {
                if (etag_at >= 0)
                    Py_RETURN_NONE;
                etag_at = i;
            }
            break;
        case 12:
            if (equal_lower(ks, 12, "content-type", 12)) {
                if (ctype != NULL)
                    Py_RETURN_NONE;
                ctype = PyTuple_GET_ITEM(item, 1);
            }
            break;
        case 14:
            if (equal_lower(ks, 14, "content-length", 14)) {
                if (length_at >= 0)
                    Py_RETURN_NONE;
                length_at = i;
            }
            break;
        case 13:
            if (equal_lower(ks, 13, "content-range", 13))
                Py_RETURN_NONE;
            break;
        case 16:
            if (equal_lower(ks, 16, "content-encoding", 16))
                Py_RETURN_NONE;
            break;
        case 19:
            if (equal_lower(ks, 19, "content-disposition", 19))
                Py_RETURN_NONE;
            break;
        case 23:
            if (equal_lower(ks, 23, "content-security-policy", 23))
                Py_RETURN_NONE;
            break;
        }
    }
    PyObject *edits = PyTuple_New(3);
    if (edits == NULL)
        return NULL;
    Py_ssize_t at[3] = {length_at, vary_at, etag_at};
    for (int j = 0; j < 3; j++) {
        PyObject *index = PyLong_FromSsize_t(at[j]);
        if (index == NULL) {
            Py_DECREF(edits);
            return NULL;
        }
        PyTuple_SET_ITEM(edits, j, index);
    }
    PyObject *result = PyTuple_Pack(2, ctype != NULL ? ctype : Py_None, edits);
    Py_DECREF(edits);
    return result;
}

static PyObject *vary_cookie; /* (b"vary", b"Cookie") */

/* rewrite_simple(headers, edits, added) -> list or None
 *
 * consent.core.inject.rewrite_planned for the usual page, one without Vary or
 * ETag and with a plain Content-Length: the headers with Content-Length grown
 * by `added` and "vary: Cookie" appended. None for anything else.
 */
static PyObject *
rewrite_simple(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "rewrite_simple(headers, edits, added)");
        return NULL;
    }
    PyObject *headers = args[0], *edits = args[1];
    if (!PyTuple_CheckExact(edits) || PyTuple_GET_SIZE(edits) != 3) {
        PyErr_SetString(PyExc_TypeError, "edits must be a tuple (length_at, vary_at, etag_at)");
        return NULL;
    }
    Py_ssize_t length_at = PyLong_AsSsize_t(PyTuple_GET_ITEM(edits, 0));
    Py_ssize_t vary_at = PyLong_AsSsize_t(PyTuple_GET_ITEM(edits, 1));
    Py_ssize_t etag_at = PyLong_AsSsize_t(PyTuple_GET_ITEM(edits, 2));
    if (PyErr_Occurred())
        return NULL;
    Py_ssize_t added = PyLong_AsSsize_t(args[2]);
    if (added == -1 && PyErr_Occurred())
        return NULL;
    if (vary_at >= 0 || etag_at >= 0 || added < 0)
        Py_RETURN_NONE;
    PyObject *out = PySequence_List(headers);
    if (out == NULL)
        return NULL;
    if (length_at >= 0) {
        if (length_at >= PyList_GET_SIZE(out))
            goto none;
        PyObject *item = PyList_GET_ITEM(out, length_at);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 1)))
            goto none;
        PyObject *v = PyTuple_GET_ITEM(item, 1);
        const char *vs = PyBytes_AS_STRING(v);
        Py_ssize_t vn = PyBytes_GET_SIZE(v);
        if (vn == 0 || vn > 15)
            goto none;
        Py_ssize_t total = 0;
        for (Py_ssize_t i = 0; i < vn; i++) {
            if (vs[i] < '0' || vs[i] > '9')
                goto none;
            total = total * 10 + (vs[i] - '0');
        }
        total += added;
        char digits[24];
        int d = (int)sizeof digits;
        do {
            digits[--d] = (char)('0' + total % 10);
            total /= 10;
        } while (total > 0);
        PyObject *grown = PyBytes_FromStringAndSize(digits + d, (Py_ssize_t)sizeof digits - d);
        if (grown == NULL)
            goto error;
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(item, 0), grown);
        Py_DECREF(grown);
        if (pair == NULL)
            goto error;
        if (PyList_SetItem(out, length_at, pair) < 0) /* steals pair */
            goto error;
    }
    if (PyList_Append(out, vary_cookie) < 0)
        goto error;
    return out;
none:
    Py_DECREF(out);
    Py_RETURN_NONE;
error:
    Py_DECREF(out);
    return NULL;
}

/* -- The ASGI shell's hot path: Gate and Relay ------------------------------------
 *
 * ConsentMiddleware.__call__ (consent/asgi.py) is the pure-Python twin: for an
 * http scope it reads the request, looks the visitor's reading up in the
 * policy's cache, and wraps `send` in a function that filters the response
 * start; a page that may take the banner goes to a _Responder. Gate.begin does
 * the same for the usual request and answers None for anything else (a cache
 * miss or an expired reading, a root_path, a path that may be the endpoint's,
 * headers of an unusual shape), which the Python code then handles from the
 * start.
 *
 * The Relay that begin() returns is that send wrapper. It filters the start
 * with filter_head above and forwards the message. For the usual page (GET,
 * 200, no trailers, headers page_facts reads, an HTML Content-Type whose
 * charset takes the snippet) it holds the start back and, when the whole body
 * comes in one message, sends both with the snippets placed: the steps of
 * _Responder._body, calling the same functions. Anything else about a page
 * (a streamed body, a byte-order mark, another message first) is handed, with
 * the held start, to a Python _Responder, which takes over every later message.
 */

static PyObject *str_type, *str_headers, *str_start_type, *str_body_type, *str_valid_until,
    *str_state, *str_expire, *str_path, *str_root_path, *str_consent, *str_send, *str_get,
    *str_status, *str_trailers, *str_method, *str_GET, *str_body, *str_more_body,
    *str_query_string, *str_start, *str_hold, *str_empty, *str_decided, *str_gpc, *empty_tuple;

typedef struct {
    PyObject_HEAD
    PyObject *tables;       /* what filter_head takes first */
    PyObject *readings;     /* the policy's cached readings, dict */
    PyObject *readings_gpc; /* the same with Sec-GPC: 1, dict */
    PyObject *gpc;          /* whether the site honours GPC (bool) */
    PyObject *clock;        /* what time.time() gives, or None for the system clock itself */
    PyObject *skip;         /* str: a path whose 2nd character is in it is the Python code's */
    PyObject *exclude;      /* tuple of str: path prefixes that never get the banner */
    /* What a page needs; all NULL when the site injects nothing. */
    PyObject *make;     /* callable(scope, rc, send, path, language) -> _Responder */
    PyObject *codec_of; /* callable(content_type) -> codec name or None */
    PyObject *snippets; /* callable(state, codec, nonce, language, query, root_path, path) */
    PyObject *rewrite;  /* callable(headers, edits, added) -> headers */
    PyObject *inject;   /* callable(page, body, head, window) -> bytes */
    PyObject *both;     /* callable(send, first, second) -> awaitable sending both in turn */
    PyObject *nothing;  /* an awaitable that is done: what send returns for a held start */
    PyObject *window;   /* int */
    PyObject *memo;     /* PageSnippets' memo, dict: read for the usual key, else snippets() */
    Slot codecs[HTML];  /* Content-Type value -> codec_of(value), as the memo keeps them */
    /* The last page's snippets and what they were made for: the same visitor
     * reading (the state object itself: a frozen ConsentState), language, codec,
     * and path unless the visitor has decided (their snippet has no return URL).
     * Asked first, before the memo's tuple key is built. */
    PyObject *last_state, *last_language, *last_codec, *last_path, *last_snippets;
} Gate;

enum { FILTER, HOLDING, PASS };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Gate *gate;
    PyObject *send, *rc, *state, *expire, *scope, *path, *language;
    int page;  /* whether this response may take the banner */
    int phase; /* FILTER: filter each start; HOLDING: a page's start is held; PASS: forward */
    PyObject *held, *held_headers, *codec, *edits; /* the held start (HOLDING) */
    PyObject *responder; /* the Python _Responder that took over, or NULL */
} Relay;

static PyTypeObject RelayType;

static int
gate_traverse(Gate *self, visitproc visit, void *arg)
{
    Py_VISIT(self->tables);
    Py_VISIT(self->readings);
    Py_VISIT(self->readings_gpc);
    Py_VISIT(self->gpc);
    Py_VISIT(self->clock);
    Py_VISIT(self->skip);
    Py_VISIT(self->exclude);
    Py_VISIT(self->make);
    Py_VISIT(self->codec_of);
    Py_VISIT(self->snippets);
    Py_VISIT(self->rewrite);
    Py_VISIT(self->inject);
    Py_VISIT(self->both);
    Py_VISIT(self->nothing);
    Py_VISIT(self->window);
    Py_VISIT(self->memo);
    Py_VISIT(self->last_state);
    Py_VISIT(self->last_language);
    Py_VISIT(self->last_codec);
    Py_VISIT(self->last_path);
    Py_VISIT(self->last_snippets);
    return 0;
}

static int
gate_clear(Gate *self)
{
    Py_CLEAR(self->tables);
    Py_CLEAR(self->readings);
    Py_CLEAR(self->readings_gpc);
    Py_CLEAR(self->gpc);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->skip);
    Py_CLEAR(self->exclude);
    Py_CLEAR(self->make);
    Py_CLEAR(self->codec_of);
    Py_CLEAR(self->snippets);
    Py_CLEAR(self->rewrite);
    Py_CLEAR(self->inject);
    Py_CLEAR(self->both);
    Py_CLEAR(self->nothing);
    Py_CLEAR(self->window);
    Py_CLEAR(self->memo);
    Py_CLEAR(self->last_state);
    Py_CLEAR(self->last_language);
    Py_CLEAR(self->last_codec);
    Py_CLEAR(self->last_path);
    Py_CLEAR(self->last_snippets);
    for (Py_ssize_t i = 0; i < HTML; i++) {
        Py_CLEAR(self->codecs[i].key);
        Py_CLEAR(self->codecs[i].value);
    }
    return 0;
}

static void
gate_dealloc(Gate *self)
{
    PyObject_GC_UnTrack(self);
    gate_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
gate_init(Gate *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"tables", "readings", "readings_gpc", "gpc", "clock", "skip",
                             "exclude", "page", NULL};
    PyObject *tables, *readings, *readings_gpc, *gpc, *clock, *skip, *exclude, *page;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!OOUO!O:Gate", kwlist, &PyTuple_Type,
                                     &tables, &PyDict_Type, &readings, &PyDict_Type,
                                     &readings_gpc, &gpc, &clock, &skip, &PyTuple_Type,
                                     &exclude, &page))
        return -1;
    if (PyTuple_GET_SIZE(tables) != 12) {
        PyErr_SetString(PyExc_TypeError, "tables must be what CookiePolicy._fast_tables() builds");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(exclude); i++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(exclude, i))) {
            PyErr_SetString(PyExc_TypeError, "exclude must be a tuple of str");
            return -1;
        }
    }
    PyObject *make = NULL, *codec_of = NULL, *snippets = NULL, *rewrite = NULL, *inject = NULL,
             *both = NULL, *nothing = NULL, *window = NULL, *memo = NULL;
    if (page != Py_None) {
        if (!PyTuple_Check(page) ||
            !PyArg_ParseTuple(page, "OOOOOOOO!O!:Gate(page=(make, codec_of, snippets, rewrite, "
                                    "inject, both, nothing, window, memo))",
                              &make, &codec_of, &snippets, &rewrite, &inject, &both, &nothing,
                              &PyLong_Type, &window, &PyDict_Type, &memo)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "page must be a tuple or None");
            return -1;
        }
    }
    int enabled = PyObject_IsTrue(gpc);
    if (enabled < 0)
        return -1;
    gate_clear(self);
    self->tables = Py_NewRef(tables);
    self->readings = Py_NewRef(readings);
    self->readings_gpc = Py_NewRef(readings_gpc);
    self->gpc = Py_NewRef(enabled ? Py_True : Py_False);
    self->clock = Py_NewRef(clock);
    self->skip = Py_NewRef(skip);
    self->exclude = Py_NewRef(exclude);
    self->make = Py_XNewRef(make);
    self->codec_of = Py_XNewRef(codec_of);
    self->snippets = Py_XNewRef(snippets);
    self->rewrite = Py_XNewRef(rewrite);
    self->inject = Py_XNewRef(inject);
    self->both = Py_XNewRef(both);
    self->nothing = Py_XNewRef(nothing);
    self->window = Py_XNewRef(window);
    self->memo = Py_XNewRef(memo);
    return 0;
}

static PyObject *relay_vectorcall(PyObject *, PyObject *const *, size_t, PyObject *);

/* Gate.begin(scope, send) -> Relay or None. Sets scope["consent"] when it answers a Relay. */
static PyObject *
gate_begin(Gate *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "begin(scope, send)");
        return NULL;
    }
    PyObject *scope = args[0], *send = args[1];
    if (self->tables == NULL) {
        PyErr_SetString(PyExc_TypeError, "Gate.__init__ was not called");
        return NULL;
    }
    if (!PyDict_CheckExact(scope))
        Py_RETURN_NONE;
    PyObject *headers = PyDict_GetItemWithError(scope, str_headers); /* borrowed */
    if (headers == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *root = PyDict_GetItemWithError(scope, str_root_path);
    if (root == NULL && PyErr_Occurred())
        return NULL;
    if (root != NULL && (!PyUnicode_CheckExact(root) || PyUnicode_GET_LENGTH(root) != 0))
        Py_RETURN_NONE; /* route_path() and its cases: the Python code's */
    PyObject *path = PyDict_GetItemWithError(scope, str_path);
    if (path == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (!PyUnicode_CheckExact(path))
        Py_RETURN_NONE;
    if (PyUnicode_GET_LENGTH(path) >= 2) {
        Py_UCS4 second = PyUnicode_READ_CHAR(path, 1);
        if (PyUnicode_FindChar(self->skip, second, 0, PyUnicode_GET_LENGTH(self->skip), 1) != -1)
            Py_RETURN_NONE; /* maybe the endpoint */
    }
    /* Held from here: a reading that is not a named tuple, or a clock given in
     * Python, may run Python code, which may change the scope. */
    Py_INCREF(path);
    PyObject *cookie, *language;
    int gpc;
    int read = read_request_impl(headers, self->gpc == Py_True, &cookie, &gpc, &language);
    if (read <= 0) {
        Py_DECREF(path);
        return read < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *rc = PyDict_GetItemWithError(gpc ? self->readings_gpc : self->readings, cookie);
    Py_DECREF(cookie);
    if (rc == NULL) {
        Py_DECREF(path);
        Py_DECREF(language);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE; /* read and verified by the policy, in Python */
    }
    Py_INCREF(rc);
    PyObject *until = NULL, *now = NULL, *state = NULL, *expire = NULL;
    /* A RequestConsent is a named tuple (state, expire, expired_names, valid_until). */
    int plain = PyTuple_Check(rc) && PyTuple_GET_SIZE(rc) == 4;
    until = plain ? Py_NewRef(PyTuple_GET_ITEM(rc, 3)) : PyObject_GetAttr(rc, str_valid_until);
    if (until == NULL)
        goto error;
    int stale;
    if (self->clock == Py_None && PyFloat_CheckExact(until)) { /* time.time(), read in C */
#if PY_VERSION_HEX >= 0x030D0000
        PyTime_t t;
        if (PyTime_Time(&t) < 0)
            goto error;
#else
        _PyTime_t t = _PyTime_GetSystemClock();
#endif
        stale = (double)t * 1e-9 >= PyFloat_AS_DOUBLE(until);
    }
    else {
        now = self->clock == Py_None ? PyObject_CallNoArgs(time_time)
                                     : PyObject_CallNoArgs(self->clock);
        if (now == NULL)
            goto error;
        stale = PyObject_RichCompareBool(now, until, Py_GE);
    }
    if (stale != 0) {
        if (stale < 0)
            goto error;
        Py_DECREF(until);
        Py_XDECREF(now);
        Py_DECREF(rc);
        Py_DECREF(path);
        Py_DECREF(language);
        Py_RETURN_NONE; /* expired: read again by the policy */
    }
    state = plain ? Py_NewRef(PyTuple_GET_ITEM(rc, 0)) : PyObject_GetAttr(rc, str_state);
    if (state == NULL)
        goto error;
    expire = plain ? Py_NewRef(PyTuple_GET_ITEM(rc, 1)) : PyObject_GetAttr(rc, str_expire);
    if (expire == NULL)
        goto error;
    int page = self->make != NULL;
    for (Py_ssize_t i = 0; page && i < PyTuple_GET_SIZE(self->exclude); i++) {
        Py_ssize_t m = PyUnicode_Tailmatch(path, PyTuple_GET_ITEM(self->exclude, i), 0,
                                           PY_SSIZE_T_MAX, -1);
        if (m < 0)
            goto error;
        if (m)
            page = 0;
    }
    if (PyDict_SetItem(scope, str_consent, state) < 0)
        goto error;
    Relay *relay = PyObject_GC_New(Relay, &RelayType);
    if (relay == NULL)
        goto error;
    relay->vectorcall = relay_vectorcall;
    relay->gate = (Gate *)Py_NewRef(self);
    relay->send = Py_NewRef(send);
    relay->rc = rc; /* the references taken above */
    relay->state = state;
    relay->expire = expire;
    relay->scope = Py_NewRef(scope);
    relay->path = path;         /* the reference taken above */
    relay->language = language; /* likewise */
    relay->page = page;
    relay->phase = FILTER;
    relay->held = relay->held_headers = relay->codec = relay->edits = NULL;
    relay->responder = NULL;
    PyObject_GC_Track(relay);
    Py_DECREF(until);
    Py_XDECREF(now);
    return (PyObject *)relay;

error:
    Py_XDECREF(until);
    Py_XDECREF(now);
    Py_XDECREF(state);
    Py_XDECREF(expire);
    Py_DECREF(rc);
    Py_DECREF(path);
    Py_DECREF(language);
    return NULL;
}

static PyMethodDef gate_methods[] = {
    {"begin", (PyCFunction)(void (*)(void))gate_begin, METH_FASTCALL,
     "begin(scope, send) -> Relay or None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "consent.core._speedups.Gate",
    .tp_basicsize = sizeof(Gate),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled twin of ConsentMiddleware.__call__ for the usual request.",
    .tp_traverse = (traverseproc)gate_traverse,
    .tp_clear = (inquiry)gate_clear,
    .tp_dealloc = (destructor)gate_dealloc,
    .tp_init = (initproc)gate_init,
    .tp_new = PyType_GenericNew,
    .tp_methods = gate_methods,
};

static int
relay_traverse(Relay *self, visitproc visit, void *arg)
{
    Py_VISIT(self->gate);
    Py_VISIT(self->send);
    Py_VISIT(self->rc);
    Py_VISIT(self->state);
    Py_VISIT(self->expire);
    Py_VISIT(self->scope);
    Py_VISIT(self->path);
    Py_VISIT(self->language);
    Py_VISIT(self->held);
    Py_VISIT(self->held_headers);
    Py_VISIT(self->codec);
    Py_VISIT(self->edits);
    Py_VISIT(self->responder);
    return 0;
}

static void
relay_let_go(Relay *self)
{
    Py_CLEAR(self->held);
    Py_CLEAR(self->held_headers);
    Py_CLEAR(self->codec);
    Py_CLEAR(self->edits);
}

static int
relay_clear(Relay *self)
{
    Py_CLEAR(self->gate);
    Py_CLEAR(self->send);
    Py_CLEAR(self->rc);
    Py_CLEAR(self->state);
    Py_CLEAR(self->expire);
    Py_CLEAR(self->scope);
    Py_CLEAR(self->path);
    Py_CLEAR(self->language);
    relay_let_go(self);
    Py_CLEAR(self->responder);
    return 0;
}

static void
relay_dealloc(Relay *self)
{
    PyObject_GC_UnTrack(self);
    relay_clear(self);
    PyObject_GC_Del(self);
}

/* Whether `value` is the str `want` (1), not it (0), or the comparison failed (-1). */
static int
is_str(PyObject *value, PyObject *want)
{
    if (value == want)
        return 1;
    if (PyUnicode_CheckExact(value)) {
#if PY_VERSION_HEX < 0x030C0000 /* a no-op, deprecated, since 3.12 */
        if (PyUnicode_READY(value) < 0)
            return -1;
#endif
        Py_ssize_t n = PyUnicode_GET_LENGTH(value);
        int kind = PyUnicode_KIND(value);
        return n == PyUnicode_GET_LENGTH(want) && kind == PyUnicode_KIND(want) &&
               memcmp(PyUnicode_DATA(value), PyUnicode_DATA(want), (size_t)(n * kind)) == 0;
    }
    return PyObject_RichCompareBool(value, want, Py_EQ);
}

/* message["type"], borrowed from an exact dict or owned (*owned set) otherwise. */
static PyObject *
message_type(PyObject *message, PyObject **owned)
{
    *owned = NULL;
    if (PyDict_CheckExact(message)) {
        PyObject *type = PyDict_GetItemWithError(message, str_type);
        if (type == NULL && !PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, str_type);
        return type;
    }
    *owned = PyObject_GetItem(message, str_type);
    return *owned;
}

/* {**message, key: value} */
static PyObject *
with_item(PyObject *message, PyObject *key, PyObject *value)
{
    PyObject *copy = PyDict_CheckExact(message) ? PyDict_Copy(message) : PyDict_New();
    if (copy == NULL)
        return NULL;
    if ((!PyDict_CheckExact(message) && PyDict_Update(copy, message) < 0) ||
        PyDict_SetItem(copy, key, value) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    return copy;
}

/* A page's start, filtered into `headers`: held (1) when it is the usual page,
 * else 0 and the Python _Responder decides; -1 on an error. */
static int
relay_hold(Relay *self, PyObject *message, PyObject *headers)
{
    Gate *gate = self->gate;
    if (!PyDict_CheckExact(message) || !PyDict_CheckExact(self->scope))
        return 0;
    PyObject *status = PyDict_GetItemWithError(message, str_status);
    if (status == NULL)
        return PyErr_Occurred() ? -1 : 0;
    int overflow = 0;
    if (!PyLong_CheckExact(status) || PyLong_AsLongAndOverflow(status, &overflow) != 200)
        return PyErr_Occurred() ? -1 : 0; /* any other status, however large: Python's */
    PyObject *trailers = PyDict_GetItemWithError(message, str_trailers);
    if (trailers != NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (PyErr_Occurred())
        return -1;
    PyObject *method = PyDict_GetItemWithError(self->scope, str_method);
    if (method == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (method != str_GET && !(PyUnicode_CheckExact(method) && PyUnicode_Compare(method, str_GET) == 0))
        return 0;
    PyObject *facts = page_facts(NULL, headers);
    if (facts == NULL)
        return -1;
    if (facts == Py_None || PyTuple_GET_ITEM(facts, 0) == Py_None) {
        Py_DECREF(facts);
        return 0;
    }
    PyObject *ctype = PyTuple_GET_ITEM(facts, 0);
    if (!PyBytes_CheckExact(ctype)) {
        Py_DECREF(facts);
        return 0;
    }
    PyObject *codec =
        memo_get(gate->codecs, HTML, PyBytes_AS_STRING(ctype), PyBytes_GET_SIZE(ctype));
    if (codec != NULL) {
        Py_INCREF(codec);
    }
    else {
        codec = PyObject_CallOneArg(gate->codec_of, ctype);
        if (codec != NULL)
            memo_put(gate->codecs, HTML, ctype, codec);
    }
    if (codec == NULL || codec == Py_None) {
        Py_DECREF(facts);
        Py_XDECREF(codec);
        return codec == NULL ? -1 : 0;
    }
    relay_let_go(self);
    self->held = Py_NewRef(message);
    self->held_headers = Py_NewRef(headers);
    self->codec = codec;
    self->edits = Py_NewRef(PyTuple_GET_ITEM(facts, 1));
    self->phase = HOLDING;
    Py_DECREF(facts);
    return 1;
}

/* Make the Python _Responder; with a held start, hand it over. */
static PyObject *
relay_responder(Relay *self)
{
    PyObject *make_args[5] = {self->scope, self->rc, self->send, self->path, self->language};
    PyObject *responder = PyObject_Vectorcall(self->gate->make, make_args, 5, NULL);
    if (responder == NULL)
        return NULL;
    if (self->phase == HOLDING) {
        PyObject *plan = PyTuple_Pack(3, self->codec, Py_None, self->edits);
        if (plan == NULL) {
            Py_DECREF(responder);
            return NULL;
        }
        PyObject *done = PyObject_CallMethodObjArgs(responder, str_hold, self->held,
                                                    self->held_headers, plan, NULL);
        Py_DECREF(plan);
        if (done == NULL) {
            Py_DECREF(responder);
            return NULL;
        }
        Py_DECREF(done);
        relay_let_go(self);
    }
    self->phase = PASS;
    Py_XSETREF(self->responder, responder);
    return responder;
}

static int
has_bom(PyObject *body)
{
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(body);
    Py_ssize_t n = PyBytes_GET_SIZE(body);
    return n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff) ||
                      (n >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xfe && b[3] == 0xff));
}

/* Whether a and b are the same for a snippet: the same object, both None, or
 * equal str or bytes. -1 on an error. */
static int
same_object(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (PyBytes_CheckExact(a) && PyBytes_CheckExact(b))
        return PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b) &&
               memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(a)) == 0;
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b))
        return PyUnicode_Compare(a, b) == 0 ? 1 : (PyErr_Occurred() ? -1 : 0);
    return 0;
}

static PyObject *relay_inject(Relay *self, PyObject *message, PyObject *body);

/* The message after a held page start: the whole page in one body message gets
 * the snippets here; anything else goes to the Python _Responder. */
static PyObject *
relay_page(Relay *self, PyObject *message)
{
    PyObject *body = NULL, *more = NULL;
    if (PyDict_CheckExact(message)) {
        PyObject *type = PyDict_GetItemWithError(message, str_type);
        if (type == NULL && PyErr_Occurred())
            return NULL;
        int is_body = type == NULL ? 0 : is_str(type, str_body_type);
        if (is_body < 0)
            return NULL;
        if (is_body) {
            body = PyDict_GetItemWithError(message, str_body);
            if (body == NULL && PyErr_Occurred())
                return NULL;
            more = PyDict_GetItemWithError(message, str_more_body);
            if (more == NULL && PyErr_Occurred())
                return NULL;
        }
    }
    if (body == NULL || !PyBytes_CheckExact(body) || PyBytes_GET_SIZE(body) == 0 ||
        (more != NULL && more != Py_False) || has_bom(body)) {
        PyObject *responder = relay_responder(self);
        if (responder == NULL)
            return NULL;
        return PyObject_CallMethodOneArg(responder, str_send, message);
    }
    /* Held: the snippets and the header rewrite may run Python code. */
    Py_INCREF(body);
    PyObject *result = relay_inject(self, message, body);
    Py_DECREF(body);
    return result;
}

/* The usual page, whole in `message`: the start and the page with the snippets. */
static PyObject *
relay_inject(Relay *self, PyObject *message, PyObject *body)
{
    Gate *gate = self->gate;
    PyObject *scope = self->scope;
    PyObject *query = PyDict_GetItemWithError(scope, str_query_string);
    if (query == NULL && PyErr_Occurred())
        return NULL;
    PyObject *root = PyDict_GetItemWithError(scope, str_root_path);
    if (root == NULL && PyErr_Occurred())
        return NULL;
    if (query == NULL)
        query = empty_bytes;
    if (root == NULL)
        root = str_empty;
    PyObject *snippets = NULL, *remember_path = NULL;
    int remember = 0; /* whether these snippets become the last page's */
    int usual = PyBytes_CheckExact(query) && PyBytes_GET_SIZE(query) == 0 &&
                PyUnicode_CheckExact(root) && PyUnicode_GET_LENGTH(root) == 0;
    if (usual && gate->last_snippets != NULL && self->state == gate->last_state) {
        int same = same_object(self->language, gate->last_language);
        if (same > 0)
            same = same_object(self->codec, gate->last_codec);
        if (same > 0 && gate->last_path != NULL)
            same = same_object(self->path, gate->last_path);
        if (same < 0)
            return NULL;
        if (same)
            snippets = Py_NewRef(gate->last_snippets);
    }
    if (snippets == NULL && usual) {
        /* PageSnippets.get's memo key, for a page without a query or nonce:
         * (accept_language, root_path, None if decided else path, query,
         *  decided, granted, gpc, charset). A miss asks get(), which keeps the memo. */
        PyObject *decided = PyObject_GetAttr(self->state, str_decided);
        PyObject *granted = decided == NULL ? NULL : PyObject_GetAttr(self->state, str_granted);
        PyObject *gpc = granted == NULL ? NULL : PyObject_GetAttr(self->state, str_gpc);
        PyObject *key = NULL;
        if (gpc != NULL)
            key = PyTuple_Pack(8, self->language, root, decided == Py_True ? Py_None : self->path,
                               query, decided, granted, gpc, self->codec);
        PyObject *path = decided == Py_True ? NULL : self->path;
        Py_XDECREF(decided);
        Py_XDECREF(granted);
        Py_XDECREF(gpc);
        if (key == NULL)
            return NULL;
        snippets = Py_XNewRef(PyDict_GetItemWithError(gate->memo, key));
        Py_DECREF(key);
        if (snippets == NULL && PyErr_Occurred())
            return NULL;
        remember = 1;
        remember_path = path;
    }
    if (snippets == NULL) { /* a memo miss, or a page with a query or root_path */
        PyObject *s_args[7] = {self->state, self->codec, Py_None, self->language, query, root,
                               self->path};
        snippets = PyObject_Vectorcall(gate->snippets, s_args, 7, NULL);
        if (snippets == NULL)
            return NULL;
    }
    PyObject *start = NULL, *page = NULL, *headers = NULL, *added = NULL, *result = NULL;
    if (!PyTuple_CheckExact(snippets) || PyTuple_GET_SIZE(snippets) != 2 ||
        !PyBytes_CheckExact(PyTuple_GET_ITEM(snippets, 0)) ||
        !PyBytes_CheckExact(PyTuple_GET_ITEM(snippets, 1))) {
        PyErr_SetString(PyExc_TypeError, "the snippets must be a (head, body) tuple of bytes");
        goto done;
    }
    if (remember) {
        Py_XSETREF(gate->last_state, Py_NewRef(self->state));
        Py_XSETREF(gate->last_language, Py_NewRef(self->language));
        Py_XSETREF(gate->last_codec, Py_NewRef(self->codec));
        Py_XSETREF(gate->last_path, Py_XNewRef(remember_path));
        Py_XSETREF(gate->last_snippets, Py_NewRef(snippets));
    }
    PyObject *head = PyTuple_GET_ITEM(snippets, 0), *snippet = PyTuple_GET_ITEM(snippets, 1);
    added = PyLong_FromSsize_t(PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(snippet));
    if (added == NULL)
        goto done;
    PyObject *r_args[3] = {self->held_headers, self->edits, added};
    headers = self->edits == Py_None ? Py_NewRef(Py_None) : rewrite_simple(NULL, r_args, 3);
    if (headers == Py_None) {
        Py_DECREF(headers);
        headers = PyObject_Vectorcall(gate->rewrite, r_args, 3, NULL);
    }
    if (headers == NULL)
        goto done;
    PyObject *i_args[4] = {body, snippet, head, gate->window};
    page = inject_page(NULL, i_args, 4);
    if (page == Py_None) {
        Py_DECREF(page);
        page = PyObject_Vectorcall(gate->inject, i_args, 4, NULL);
    }
    if (page == NULL)
        goto done;
    start = with_item(self->held, str_headers, headers);
    if (start == NULL)
        goto done;
    PyObject *rest = with_item(message, str_body, page);
    if (rest == NULL)
        goto done;
    PyObject *b_args[3] = {self->send, start, rest};
    relay_let_go(self);
    self->phase = PASS;
    result = PyObject_Vectorcall(gate->both, b_args, 3, NULL);
    Py_DECREF(rest);
done:
    Py_DECREF(snippets);
    Py_XDECREF(added);
    Py_XDECREF(headers);
    Py_XDECREF(page);
    Py_XDECREF(start);
    return result;
}

/* relay(message): the send wrapper of ConsentMiddleware.__call__, in C. */
static PyObject *
relay_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Relay *self = (Relay *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "send(message) takes one message");
        return NULL;
    }
    PyObject *message = args[0];
    if (self->send == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this send was cleared");
        return NULL;
    }
    if (self->responder != NULL)
        return PyObject_CallMethodOneArg(self->responder, str_send, message);
    if (self->phase == PASS)
        return PyObject_CallOneArg(self->send, message);
    if (self->phase == HOLDING)
        return relay_page(self, message);
    PyObject *owned;
    PyObject *type = message_type(message, &owned);
    if (type == NULL)
        return NULL;
    int is_start = is_str(type, str_start_type);
    Py_XDECREF(owned);
    if (is_start < 0)
        return NULL;
    if (!is_start)
        return PyObject_CallOneArg(self->send, message);
    PyObject *original;
    if (PyDict_CheckExact(message)) {
        original = PyDict_GetItemWithError(message, str_headers);
        if (original == NULL) {
            if (PyErr_Occurred())
                return NULL;
            original = empty_tuple;
        }
        Py_INCREF(original);
    }
    else {
        original = PyObject_CallMethodObjArgs(message, str_get, str_headers, empty_tuple, NULL);
        if (original == NULL)
            return NULL;
    }
    PyObject *fh_args[4] = {self->gate->tables, original, self->state, self->expire};
    PyObject *got = filter_head_impl(fh_args, 4, 0);
    if (got == NULL) {
        Py_DECREF(original);
        return NULL;
    }
    if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 3) {
        Py_DECREF(original);
        Py_DECREF(got);
        PyErr_SetString(PyExc_TypeError, "filter_head answered something else than a 3-tuple");
        return NULL;
    }
    PyObject *headers = PyTuple_GET_ITEM(got, 0);
    PyObject *result = NULL;
    if (self->page) {
        int html = PyObject_IsTrue(PyTuple_GET_ITEM(got, 2));
        if (html < 0)
            goto done;
        if (html) {
            int held = relay_hold(self, message, headers);
            if (held < 0)
                goto done;
            if (held) {
                result = Py_NewRef(self->gate->nothing);
                goto done;
            }
            PyObject *responder = relay_responder(self);
            if (responder != NULL)
                result = PyObject_CallMethodObjArgs(responder, str_start, message, headers, NULL);
            goto done;
        }
    }
    if (headers == original) {
        result = PyObject_CallOneArg(self->send, message);
    }
    else {
        PyObject *copy = with_item(message, str_headers, headers);
        if (copy != NULL) {
            result = PyObject_CallOneArg(self->send, copy);
            Py_DECREF(copy);
        }
    }
done:
    Py_DECREF(original);
    Py_DECREF(got);
    return result;
}

static PyTypeObject RelayType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "consent.core._speedups.Relay",
    .tp_basicsize = sizeof(Relay),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "ConsentMiddleware's send wrapper for one request (made by Gate.begin).",
    .tp_traverse = (traverseproc)relay_traverse,
    .tp_clear = (inquiry)relay_clear,
    .tp_dealloc = (destructor)relay_dealloc,
    .tp_vectorcall_offset = offsetof(Relay, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* DONE: an awaitable that is done already (what the Relay answers for a held
 * start). Awaiting it gives the same exhausted iterator every time. */
static PyObject *exhausted;

static PyObject *
done_await(PyObject *self)
{
    return Py_NewRef(exhausted);
}

static PyAsyncMethods done_async = {.am_await = done_await};

static PyTypeObject DoneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "consent.core._speedups.Done",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An awaitable that is done already.",
    .tp_as_async = &done_async,
};

static PyMethodDef methods[] = {
    {"read_request", (PyCFunction)(void (*)(void))read_request, METH_FASTCALL,
     "read_request(headers, gpc_enabled) -> (cookie, gpc, accept_language) or None"},
    {"page_facts", (PyCFunction)page_facts, METH_O,
     "page_facts(headers) -> (content_type, (length_at, vary_at, etag_at)) or None"},
    {"rewrite_simple", (PyCFunction)(void (*)(void))rewrite_simple, METH_FASTCALL,
     "rewrite_simple(headers, edits, added) -> list or None"},
    {"inject_page", (PyCFunction)(void (*)(void))inject_page, METH_FASTCALL,
     "inject_page(page, body, head, window) -> bytes or None"},
    {"new_memo", (PyCFunction)new_memo, METH_NOARGS,
     "new_memo() -> the memo CookiePolicy._fast_tables() ends with"},
    {"filter_head", (PyCFunction)(void (*)(void))filter_head, METH_FASTCALL,
     "filter_head(tables, headers, state[, expire]) -> (headers, blocked, maybe_html)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "consent.core._speedups",
    "Compiled twins of the hot loops of consent.core (optional).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    one = PyLong_FromLong(1);
    if (one == NULL)
        return NULL;
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL)
        return NULL;
    time_time = PyObject_GetAttrString(time_module, "time");
    Py_DECREF(time_module);
    if (time_time == NULL)
        return NULL;
    str_granted = PyUnicode_InternFromString("granted");
    if (str_granted == NULL)
        return NULL;
    vary_cookie = Py_BuildValue("(y#y#)", "vary", (Py_ssize_t)4, "Cookie", (Py_ssize_t)6);
    if (vary_cookie == NULL)
        return NULL;
#define INTERN(var, text)                          \
    if ((var = PyUnicode_InternFromString(text)) == NULL) \
        return NULL;
    INTERN(str_type, "type");
    INTERN(str_headers, "headers");
    INTERN(str_start_type, "http.response.start");
    INTERN(str_body_type, "http.response.body");
    INTERN(str_valid_until, "valid_until");
    INTERN(str_state, "state");
    INTERN(str_expire, "expire");
    INTERN(str_path, "path");
    INTERN(str_root_path, "root_path");
    INTERN(str_consent, "consent");
    INTERN(str_send, "send");
    INTERN(str_get, "get");
    INTERN(str_status, "status");
    INTERN(str_trailers, "trailers");
    INTERN(str_method, "method");
    INTERN(str_GET, "GET");
    INTERN(str_body, "body");
    INTERN(str_more_body, "more_body");
    INTERN(str_query_string, "query_string");
    INTERN(str_start, "start");
    INTERN(str_hold, "hold");
    INTERN(str_empty, "");
    INTERN(str_decided, "decided");
    INTERN(str_gpc, "gpc");
#undef INTERN
    empty_tuple = PyTuple_New(0);
    empty_bytes = PyBytes_FromStringAndSize("", 0);
    if (empty_tuple == NULL || empty_bytes == NULL)
        return NULL;
    if (PyType_Ready(&GateType) < 0 || PyType_Ready(&RelayType) < 0 ||
        PyType_Ready(&DoneType) < 0)
        return NULL;
    PyObject *nothing = PyTuple_New(0);
    if (nothing == NULL)
        return NULL;
    exhausted = PyObject_GetIter(nothing);
    Py_DECREF(nothing);
    if (exhausted == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&GateType);
    if (PyModule_AddObject(m, "Gate", (PyObject *)&GateType) < 0) {
        Py_DECREF(&GateType);
        Py_DECREF(m);
        return NULL;
    }
    PyObject *done = PyType_GenericAlloc(&DoneType, 0);
    if (done == NULL || PyModule_AddObject(m, "DONE", done) < 0) {
        Py_XDECREF(done);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
