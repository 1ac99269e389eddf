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
#include <string.h>

static PyObject *str_granted; /* "granted", interned once */

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
static PyObject *
read_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read_request(headers, gpc_enabled)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "headers must be a sequence");
    if (seq == NULL)
        return NULL;
    int gpc_enabled = PyObject_IsTrue(args[1]);
    if (gpc_enabled < 0) {
        Py_DECREF(seq);
        return NULL;
    }
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
    if (value == NULL) {
        value = PyBytes_FromStringAndSize("", 0);
        if (value == NULL) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    else if (joined == NULL) {
        Py_INCREF(value);
    }
    PyObject *result = PyTuple_New(3);
    if (result == NULL) {
        Py_DECREF(value);
        Py_DECREF(seq);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, value);
    PyObject *flag = gpc ? Py_True : Py_False;
    Py_INCREF(flag);
    PyTuple_SET_ITEM(result, 1, flag);
    Py_INCREF(language);
    PyTuple_SET_ITEM(result, 2, language);
    Py_DECREF(seq);
    return result;

fallback:
    Py_XDECREF(joined);
    Py_DECREF(seq);
    Py_RETURN_NONE;
error:
    Py_XDECREF(joined);
    Py_DECREF(seq);
    return NULL;
}

/* filter_head(tables, headers, state, expire) -> (headers, blocked, maybe_html)
 *
 * CookiePolicy.filter_head (consent/core/response.py) in C. ``tables`` is the
 * tuple CookiePolicy._fast_tables() builds once: (names, display, verdict,
 * deletes, always, html, is_html, fallback, deletions, pending, fold). The
 * caches are the policy's own dicts; a miss calls back into the policy. The
 * blocked names are counted as BlockedCookies.add does: appended to its pending
 * list, folded into the counts every 256 lists.
 */
static PyObject *
filter_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "filter_head(tables, headers, state[, expire])");
        return NULL;
    }
    PyObject *tables = args[0];
    PyObject *headers = args[1];
    PyObject *state = args[2];
    PyObject *expire = nargs == 4 ? args[3] : NULL;
    if (!PyTuple_CheckExact(tables) || PyTuple_GET_SIZE(tables) != 11) {
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
    PyObject *pending = PyTuple_GET_ITEM(tables, 9);
    PyObject *fold = PyTuple_GET_ITEM(tables, 10);
    if (!PyDict_CheckExact(names) || !PyDict_CheckExact(display) ||
        !PyDict_CheckExact(html_cache) || !PyDict_CheckExact(deletions) ||
        !PyList_CheckExact(pending)) {
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
    blocked = PyList_New(0);
    if (blocked == NULL) {
        Py_DECREF(snap);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
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
            PyObject *raw = rn == vn ? (Py_INCREF(v), v) : PyBytes_FromStringAndSize(vs, rn);
            if (raw == NULL)
                goto error;
            PyObject *verdict = PyDict_GetItemWithError(names, raw); /* borrowed */
            PyObject *owned = NULL;
            if (verdict == NULL) {
                if (PyErr_Occurred()) {
                    Py_DECREF(raw);
                    goto error;
                }
                owned = PyObject_CallOneArg(verdict_fn, raw);
                if (owned == NULL) {
                    Py_DECREF(raw);
                    goto error;
                }
                verdict = owned;
            }
            int keep = verdict == always;
            if (!keep) {
                if (granted == NULL) {
                    granted = PyObject_GetAttr(state, str_granted);
                    if (granted == NULL) {
                        Py_XDECREF(owned);
                        Py_DECREF(raw);
                        goto error;
                    }
                }
                keep = PySequence_Contains(granted, verdict);
                if (keep == 0) {
                    /* A deletion always passes; the answer is cached per attribute
                     * string (all after the first ";"), as CookiePolicy._deletes does. */
                    const char *semi = memchr(vs, ';', (size_t)vn);
                    PyObject *attrs = semi == NULL
                                          ? PyBytes_FromStringAndSize("", 0)
                                          : PyBytes_FromStringAndSize(semi + 1, vn - (semi + 1 - vs));
                    PyObject *d = NULL;
                    if (attrs != NULL) {
                        d = PyDict_GetItemWithError(deletions, attrs);
                        if (d != NULL)
                            Py_INCREF(d);
                        else if (!PyErr_Occurred())
                            d = PyObject_CallOneArg(deletes_fn, v);
                        Py_DECREF(attrs);
                    }
                    keep = d == NULL ? -1 : PyObject_IsTrue(d);
                    Py_XDECREF(d);
                }
            }
            Py_XDECREF(owned);
            if (keep < 0) {
                Py_DECREF(raw);
                goto error;
            }
            if (!keep) {
                if (out == NULL) {
                    out = PyList_New(i);
                    if (out == NULL) {
                        Py_DECREF(raw);
                        goto error;
                    }
                    for (Py_ssize_t j = 0; j < i; j++) {
                        Py_INCREF(items[j]);
                        PyList_SET_ITEM(out, j, items[j]);
                    }
                }
                PyObject *name = PyDict_GetItemWithError(display, raw); /* borrowed */
                if (name == NULL) {
                    if (!PyErr_Occurred())
                        PyErr_SetObject(PyExc_KeyError, raw);
                    Py_DECREF(raw);
                    goto error;
                }
                Py_DECREF(raw);
                if (PyList_Append(blocked, name) < 0)
                    goto error;
                continue;
            }
            Py_DECREF(raw);
        }
        else if (kn == 12 && equal_lower(ks, kn, "content-type", 12)) {
            ctype = v;
        }
        if (out != NULL && PyList_Append(out, item) < 0)
            goto error;
    }
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
        PyObject *key = ctype; /* still alive: snap holds it */
        if (key == NULL) {
            key = PyBytes_FromStringAndSize("", 0);
            if (key == NULL)
                goto error;
        }
        else {
            Py_INCREF(key);
        }
        html = PyDict_GetItemWithError(html_cache, key);
        if (html != NULL) {
            Py_INCREF(html);
        }
        else if (PyErr_Occurred()) {
            Py_DECREF(key);
            goto error;
        }
        else {
            html = PyObject_CallOneArg(is_html_fn, key);
            if (html == NULL) {
                Py_DECREF(key);
                goto error;
            }
            if (PyDict_GET_SIZE(html_cache) >= 64)
                PyDict_Clear(html_cache);
            if (PyDict_SetItem(html_cache, key, html) < 0) {
                Py_DECREF(key);
                goto error;
            }
        }
        Py_DECREF(key);
    }
    if (PyList_GET_SIZE(blocked) > 0) {
        if (PyList_Append(pending, blocked) < 0)
            goto error;
        if (PyList_GET_SIZE(pending) >= 256) {
            PyObject *done = PyObject_CallNoArgs(fold);
            if (done == NULL)
                goto error;
            Py_DECREF(done);
        }
    }
    Py_XDECREF(granted);
    Py_DECREF(snap);
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
    return Py_BuildValue("(O(nnn))", ctype != NULL ? ctype : Py_None, length_at, vary_at, etag_at);
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
    Py_ssize_t length_at, vary_at, etag_at;
    if (!PyTuple_CheckExact(edits) || !PyArg_ParseTuple(edits, "nnn", &length_at, &vary_at, &etag_at))
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
        PyObject *grown = PyBytes_FromFormat("%zd", total);
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

static PyMethodDef methods[] = {
    {"read_request", (PyCFunction)(void (*)(void))read_request, METH_FASTCALL,
     "read_request(headers, gpc_enabled) -> (cookie, gpc, accept_language) or None"},
    {"page_facts", (PyCFunction)page_facts, METH_O,
     "page_facts(headers) -> (content_type, (length_at, vary_at, etag_at)) or None"},
    {"rewrite_simple", (PyCFunction)(void (*)(void))rewrite_simple, METH_FASTCALL,
     "rewrite_simple(headers, edits, added) -> list or None"},
    {"inject_page", (PyCFunction)(void (*)(void))inject_page, METH_FASTCALL,
     "inject_page(page, body, head, window) -> bytes or None"},
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
    str_granted = PyUnicode_InternFromString("granted");
    if (str_granted == NULL)
        return NULL;
    vary_cookie = Py_BuildValue("(y#y#)", "vary", (Py_ssize_t)4, "Cookie", (Py_ssize_t)6);
    if (vary_cookie == NULL)
        return NULL;
    return PyModule_Create(&module);
}
