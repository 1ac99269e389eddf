/* consent.core._speedups: compiled twins of the pure kernels every request runs.
 *
 *   header_kinds(headers) -> bytes     one letter per response header (S, T, L, ...)
 *   sec_gpc(value) -> bool             whether a Sec-GPC value says 1
 *   read_request(headers, gpc_enabled) -> (cookie, gpc, accept_language)
 *   inject_page(page, body, head=b"", window=65536) -> bytes or None
 *
 * Pure functions over bytes with plain arguments, and nothing else: no types, no
 * state kept between calls, no calls into Python callables. Their pure-Python
 * twins define the behaviour: consent/core/_kernels_py.py for the first three,
 * consent.core.inject.inject_page (HTMLInjector's whole-page placement) for the
 * last; consent/core/kernels.py picks these or those, and
 * tests/core/test_kernels.py checks that both give the same on random input.
 *
 * Each function gives its twin's result, or raises the same exception type, for
 * any input. A list or tuple of 2-tuples of exact bytes takes the fast path;
 * anything else (a generator, list items, str names, bytes subclasses, ...) the
 * generic one, which uses the protocols the twin's code uses (iteration, hash,
 * ==, truth) and so runs an object's own __iter__, __hash__ or __eq__ just where
 * the twin would; nothing else is called. inject_page returns None for what only its twin answers (a page, body or
 * head that is not exactly bytes, a window that is not an int): the caller then
 * runs the twin.
 *
 * Multi-phase init. The module state holds what the generic path compares odd
 * names with (three request header names; the usual spellings of the response
 * header names), so nothing is global and each interpreter has its own. The GIL
 * is declared used: the code has not been audited for free-threading.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    PyObject *cookie;          /* b"cookie" */
    PyObject *accept_language; /* b"accept-language" */
    PyObject *sec_gpc;         /* b"sec-gpc" */
} State;

static State *
state_of(PyObject *module)
{
    return (State *)PyModule_GetState(module);
}

/* Whether s[:n] spells `lower` (all lowercase) in any ASCII case, as bytes.lower() does. */
static int
equal_lower(const char *s, const char *lower, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != lower[i])
            return 0;
    }
    return 1;
}

/* The arguments of a METH_FASTCALL | METH_KEYWORDS call in out[], by parameter, as
 * a Python def with these positional-or-keyword parameters takes them (NULL for
 * one left out, which then has a default). 0, or -1 with a TypeError. */
static int
take_args(const char *fname, const char *const names[], Py_ssize_t total, Py_ssize_t required,
          PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    if (nargs > total) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments but %zd were given",
                     fname, total, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < total; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < total && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == total) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

/* `for item in headers`: a list or tuple is read in place (its size checked at
 * every step, as a list iterator does), anything else through its iterator. */
typedef struct {
    PyObject *seq; /* borrowed: an exact list or tuple, or NULL */
    PyObject *it;  /* owned: the iterator of anything else */
    Py_ssize_t i;
} Walk;

static int
walk_start(Walk *w, PyObject *headers)
{
    w->i = 0;
    w->seq = NULL;
    w->it = NULL;
    if (PyList_CheckExact(headers) || PyTuple_CheckExact(headers)) {
        w->seq = headers;
        return 0;
    }
    w->it = PyObject_GetIter(headers);
    return w->it == NULL ? -1 : 0;
}

/* The next item (a new reference), or NULL at the end or on an error. */
static PyObject *
walk_next(Walk *w)
{
    if (w->it != NULL)
        return PyIter_Next(w->it);
    if (PyList_CheckExact(w->seq))
        return w->i < PyList_GET_SIZE(w->seq) ? Py_NewRef(PyList_GET_ITEM(w->seq, w->i++)) : NULL;
    return w->i < PyTuple_GET_SIZE(w->seq) ? Py_NewRef(PyTuple_GET_ITEM(w->seq, w->i++)) : NULL;
}

/* `name, value = item`: 0 with new references in *name and *value, or -1 with the
 * error that unpacking raises (ValueError for the wrong count, TypeError for an
 * item that cannot be iterated). */
static int
unpack2(PyObject *item, PyObject **name, PyObject **value)
{
    Py_ssize_t n = -1;
    if (PyTuple_CheckExact(item)) {
        n = PyTuple_GET_SIZE(item);
        if (n == 2) {
            *name = Py_NewRef(PyTuple_GET_ITEM(item, 0));
            *value = Py_NewRef(PyTuple_GET_ITEM(item, 1));
            return 0;
        }
    }
    else if (PyList_CheckExact(item)) {
        n = PyList_GET_SIZE(item);
        if (n == 2) {
            *name = Py_NewRef(PyList_GET_ITEM(item, 0));
            *value = Py_NewRef(PyList_GET_ITEM(item, 1));
            return 0;
        }
    }
    if (n >= 0) { /* a list or tuple of another size: nothing to iterate for */
        if (n < 2)
            PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 2, got %zd)", n);
        else
            PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
        return -1;
    }
    PyObject *it = PyObject_GetIter(item);
    if (it == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) && Py_TYPE(item)->tp_iter == NULL &&
            !PySequence_Check(item))
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                         Py_TYPE(item)->tp_name);
        return -1;
    }
    PyObject *got[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        got[i] = PyIter_Next(it);
        if (got[i] == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 2, got %d)",
                             i);
            goto fail;
        }
    }
    PyObject *more = PyIter_Next(it);
    if (more != NULL) {
        Py_DECREF(more);
        PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
        goto fail;
    }
    if (PyErr_Occurred())
        goto fail;
    Py_DECREF(it);
    *name = got[0];
    *value = got[1];
    return 0;
fail:
    Py_XDECREF(got[0]);
    Py_XDECREF(got[1]);
    Py_DECREF(it);
    return -1;
}

/* -- header_kinds ---------------------------------------------------------- */

static const struct {
    const char *name;
    Py_ssize_t size;
    char kind;
} KINDS[] = {
    {"set-cookie", 10, 'S'},
    {"content-type", 12, 'T'},
    {"content-length", 14, 'L'},
    {"vary", 4, 'V'},
    {"etag", 4, 'E'},
    {"cache-control", 13, 'C'},
    {"content-encoding", 16, 'Z'},
    {"content-range", 13, 'R'},
    {"content-disposition", 19, 'D'},
    {"content-security-policy", 23, 'P'},
    {"accept-ranges", 13, 'A'},
};

/* The kind of an exact bytes name, in any ASCII case: a letter, or '.'. */
static char
kind_of(PyObject *name)
{
    const char *s = PyBytes_AS_STRING(name);
    Py_ssize_t n = PyBytes_GET_SIZE(name);
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        if (KINDS[k].size == n && equal_lower(s, KINDS[k].name, n))
            return KINDS[k].kind;
    }
    return '.';
}

PyDoc_STRVAR(header_kinds_doc,
             "header_kinds($module, /, headers)\n--\n\n"
             "One letter per header: see consent.core._kernels_py.header_kinds.");

/* As the twin: every item unpacked; an exact bytes name is looked up in any
 * case, any other name is '.'. */
static PyObject *
header_kinds(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"headers"};
    PyObject *arg[1];
    Walk w;
    (void)module;
    if (take_args("header_kinds", names, 1, 1, args, nargs, kwnames, arg) < 0 ||
        walk_start(&w, arg[0]) < 0)
        return NULL;
    char small[64];
    char *buf = small;
    Py_ssize_t n = 0, cap = (Py_ssize_t)sizeof small;
    PyObject *item, *result = NULL;
    while ((item = walk_next(&w)) != NULL) {
        PyObject *name, *value;
        int r = unpack2(item, &name, &value);
        Py_DECREF(item);
        if (r < 0)
            goto done;
        Py_DECREF(value);
        char kind = PyBytes_CheckExact(name) ? kind_of(name) : '.';
        Py_DECREF(name);
        if (n == cap) {
            char *more = PyMem_Malloc((size_t)cap * 2);
            if (more == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            memcpy(more, buf, (size_t)n);
            if (buf != small)
                PyMem_Free(buf);
            buf = more;
            cap *= 2;
        }
        buf[n++] = kind;
    }
    if (!PyErr_Occurred())
        result = PyBytes_FromStringAndSize(buf, n);
done:
    if (buf != small)
        PyMem_Free(buf);
    Py_XDECREF(w.it);
    return result;
}

/* -- sec_gpc and read_request ---------------------------------------------- */

/* Whether some comma-separated token of s[:n], stripped of spaces and tabs, is "1". */
static int
says_1(const char *s, Py_ssize_t n)
{
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        Py_ssize_t a = start, b = i;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        if (b - a == 1 && s[a] == '1')
            return 1;
        start = i + 1;
    }
    return 0;
}

PyDoc_STRVAR(sec_gpc_doc, "sec_gpc($module, /, value)\n--\n\n"
                          "Whether a Sec-GPC value says 1: see consent.core._kernels_py.sec_gpc.");

static PyObject *
sec_gpc(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs,
        PyObject *kwnames)
{
    static const char *const names[] = {"value"};
    PyObject *arg[1];
    if (take_args("sec_gpc", names, 1, 1, args, nargs, kwnames, arg) < 0)
        return NULL;
    PyObject *v = arg[0];
    if (PyBytes_Check(v))
        return PyBool_FromLong(says_1(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v)));
    if (PyByteArray_Check(v))
        return PyBool_FromLong(says_1(PyByteArray_AS_STRING(v), PyByteArray_GET_SIZE(v)));
    /* What value.split(b",") raises in the twin. */
    if (PyUnicode_Check(v))
        PyErr_SetString(PyExc_TypeError, "must be str or None, not bytes");
    else
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute 'split'",
                     Py_TYPE(v)->tp_name);
    return NULL;
}

/* `name == want` (want_obj holds the same bytes): 1, 0, or -1 on an error. */
static int
name_is(PyObject *name, const char *want, Py_ssize_t n, PyObject *want_obj)
{
    if (PyBytes_CheckExact(name))
        return PyBytes_GET_SIZE(name) == n && memcmp(PyBytes_AS_STRING(name), want, (size_t)n) == 0;
    return PyObject_RichCompareBool(name, want_obj, Py_EQ);
}

/* *acc + sep (two bytes) + value, into *acc (a new object; the old one released). */
static int
join(PyObject **acc, const char *sep, PyObject *value)
{
    Py_ssize_t an = PyBytes_GET_SIZE(*acc), vn = PyBytes_GET_SIZE(value);
    if (vn > PY_SSIZE_T_MAX - 2 - an) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, an + 2 + vn);
    if (out == NULL)
        return -1;
    char *o = PyBytes_AS_STRING(out);
    memcpy(o, PyBytes_AS_STRING(*acc), (size_t)an);
    memcpy(o + an, sep, 2);
    memcpy(o + an + 2, PyBytes_AS_STRING(value), (size_t)vn);
    Py_DECREF(*acc);
    *acc = out;
    return 0;
}

/* One header whose value is exact bytes, as the twin's loop body reads it. The
 * results are owned: *cookie NULL stands for b"", *language NULL for None. */
static int
take_header(State *st, PyObject *name, PyObject *value, PyObject *gpc_enabled, PyObject **cookie,
            int *gpc, PyObject **language)
{
    int is = name_is(name, "cookie", 6, st->cookie);
    if (is < 0)
        return -1;
    if (is) {
        if (*cookie != NULL && PyBytes_GET_SIZE(*cookie) > 0)
            return join(cookie, "; ", value);
        Py_XDECREF(*cookie);
        *cookie = Py_NewRef(value);
        return 0;
    }
    is = name_is(name, "accept-language", 15, st->accept_language);
    if (is < 0)
        return -1;
    if (is) {
        if (*language != NULL)
            return join(language, ", ", value);
        *language = Py_NewRef(value);
        return 0;
    }
    is = name_is(name, "sec-gpc", 7, st->sec_gpc);
    if (is <= 0)
        return is;
    is = PyObject_IsTrue(gpc_enabled); /* asked here, as the twin's `and` asks it */
    if (is <= 0)
        return is;
    if (!*gpc)
        *gpc = says_1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    return 0;
}

PyDoc_STRVAR(read_request_doc,
             "read_request($module, /, headers, gpc_enabled)\n--\n\n"
             "(cookie, gpc, accept_language): see consent.core._kernels_py.read_request.");

static PyObject *
read_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"headers", "gpc_enabled"};
    PyObject *arg[2];
    Walk w;
    if (take_args("read_request", names, 2, 2, args, nargs, kwnames, arg) < 0 ||
        walk_start(&w, arg[0]) < 0)
        return NULL;
    State *st = state_of(module);
    PyObject *cookie = NULL, *language = NULL, *item, *result = NULL;
    int gpc = 0;
    while ((item = walk_next(&w)) != NULL) {
        PyObject *name, *value;
        int r = unpack2(item, &name, &value);
        Py_DECREF(item);
        if (r < 0)
            goto done;
        if (PyBytes_CheckExact(value)) /* the twin skips any other value unread */
            r = take_header(st, name, value, arg[1], &cookie, &gpc, &language);
        Py_DECREF(name);
        Py_DECREF(value);
        if (r < 0)
            goto done;
    }
    if (PyErr_Occurred())
        goto done;
    if (cookie == NULL && (cookie = PyBytes_FromStringAndSize(NULL, 0)) == NULL)
        goto done;
    result = Py_BuildValue("(OOO)", cookie, gpc ? Py_True : Py_False,
                           language != NULL ? language : Py_None);
done:
    Py_XDECREF(cookie);
    Py_XDECREF(language);
    Py_XDECREF(w.it);
    return result;
}

/* -- inject_page ------------------------------------------------------------ */

/* Offset of the last "</body>" in p[:n], in any ASCII case, or -1. */
static Py_ssize_t
rfind_close(const char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = n - 7; i >= 0; i--) {
        if (p[i] == '<' && p[i + 1] == '/' && p[i + 6] == '>' && equal_lower(p + i + 2, "body", 4))
            return i;
    }
    return -1;
}

/* Where the head snippet goes, as HTMLInjector._scan_head finds it over p[:end]:
 * right after the first <head> start tag (any case; "<head" followed by a space,
 * "/" or ">"; a ">" inside quotes does not end it) that ends within p[:end],
 * outside comments. -1 when there is none. */
static Py_ssize_t
find_head(const char *p, Py_ssize_t end)
{
    Py_ssize_t i = 0;
    while (i < end) {
        const char *lt = memchr(p + i, '<', (size_t)(end - i));
        if (lt == NULL)
            return -1;
        Py_ssize_t at = lt - p;
        if (end - at >= 4 && lt[1] == '!' && lt[2] == '-' && lt[3] == '-') {
            /* A comment, which ends at the first "-->" from its "--" on ("<!-->" is one). */
            Py_ssize_t e = at + 2;
            while (e + 3 <= end && !(p[e] == '-' && p[e + 1] == '-' && p[e + 2] == '>'))
                e++;
            if (e + 3 > end)
                return -1;
            i = e + 3;
            continue;
        }
        if (end - at >= 6 && equal_lower(lt + 1, "head", 4) && lt[5] != '\0' &&
            strchr("\t\n\x0c\r />", lt[5]) != NULL) {
            char quote = 0;
            for (Py_ssize_t j = at + 5; j < end; j++) {
                char ch = p[j];
                if (quote) {
                    if (ch == quote)
                        quote = 0;
                }
                else if (ch == '>')
                    return j + 1;
                else if (ch == '"' || ch == '\'')
                    quote = ch;
            }
            return -1; /* the tag goes on past the window: no head tag found in it */
        }
        i = at + 1;
    }
    return -1;
}

static char *
put(char *o, const char *s, Py_ssize_t n)
{
    memcpy(o, s, (size_t)n);
    return o + n;
}

PyDoc_STRVAR(inject_page_doc,
             "inject_page($module, /, page, body, head=b'', window=65536)\n--\n\n"
             "consent.core.inject.inject_page, or None for what only it answers.");

static PyObject *
inject_page(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    static const char *const names[] = {"page", "body", "head", "window"};
    PyObject *arg[4];
    if (take_args("inject_page", names, 4, 2, args, nargs, kwnames, arg) < 0)
        return NULL;
    Py_ssize_t window = 65536;
    if (arg[3] != NULL) { /* HTMLInjector checks it first */
        if (!PyLong_CheckExact(arg[3]) && !PyBool_Check(arg[3]))
            Py_RETURN_NONE;
        int overflow;
        long long w = PyLong_AsLongLongAndOverflow(arg[3], &overflow);
        if (w == -1 && PyErr_Occurred())
            return NULL;
        if (overflow < 0 || (overflow == 0 && w < 1)) {
            PyErr_SetString(PyExc_ValueError, "window must be positive");
            return NULL;
        }
#if SIZEOF_SIZE_T < SIZEOF_LONG_LONG
        if (w > PY_SSIZE_T_MAX)
            overflow = 1;
#endif
        window = overflow ? PY_SSIZE_T_MAX : (Py_ssize_t)w;
    }
    PyObject *page = arg[0], *body = arg[1], *head = arg[2];
    if (!PyBytes_CheckExact(page) || !PyBytes_CheckExact(body) ||
        (head != NULL && !PyBytes_CheckExact(head)))
        Py_RETURN_NONE;
    const char *p = PyBytes_AS_STRING(page);
    const char *hs = head != NULL ? PyBytes_AS_STRING(head) : "";
    Py_ssize_t n = PyBytes_GET_SIZE(page), bn = PyBytes_GET_SIZE(body);
    Py_ssize_t hn = head != NULL ? PyBytes_GET_SIZE(head) : 0;
    if (bn > PY_SSIZE_T_MAX - n || hn > PY_SSIZE_T_MAX - n - bn) {
        PyErr_SetString(PyExc_OverflowError, "join() result is too long for a Python bytes");
        return NULL;
    }

    Py_ssize_t c = rfind_close(p, n); /* the body snippet goes before it */
    if (c < 0 || n - c > window)
        c = n;
    /* Without a head tag, the head snippet goes out with the body snippet. */
    Py_ssize_t h = hn > 0 ? find_head(p, n < window ? n : window) : -1;

    PyObject *out = PyBytes_FromStringAndSize(NULL, n + bn + hn);
    if (out == NULL)
        return NULL;
    char *o = PyBytes_AS_STRING(out);
    const char *bs = PyBytes_AS_STRING(body);
    if (h < 0) { /* page[:c] head body page[c:] */
        o = put(o, p, c);
        o = put(o, hs, hn);
        o = put(o, bs, bn);
        put(o, p + c, n - c);
    }
    else if (h <= c) { /* page[:h] head page[h:c] body page[c:] */
        o = put(o, p, h);
        o = put(o, hs, hn);
        o = put(o, p + h, c - h);
        o = put(o, bs, bn);
        put(o, p + c, n - c);
    }
    else { /* page[:c] body page[c:h] head page[h:] */
        o = put(o, p, c);
        o = put(o, bs, bn);
        o = put(o, p + c, h - c);
        o = put(o, hs, hn);
        put(o, p + h, n - h);
    }
    return out;
}

/* -- the module ------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"header_kinds", (PyCFunction)(void (*)(void))header_kinds, METH_FASTCALL | METH_KEYWORDS,
     header_kinds_doc},
    {"sec_gpc", (PyCFunction)(void (*)(void))sec_gpc, METH_FASTCALL | METH_KEYWORDS, sec_gpc_doc},
    {"read_request", (PyCFunction)(void (*)(void))read_request, METH_FASTCALL | METH_KEYWORDS,
     read_request_doc},
    {"inject_page", (PyCFunction)(void (*)(void))inject_page, METH_FASTCALL | METH_KEYWORDS,
     inject_page_doc},
    {NULL, NULL, 0, NULL},
};

static int
module_exec(PyObject *module)
{
    State *st = state_of(module);
    st->cookie = PyBytes_FromStringAndSize("cookie", 6);
    st->accept_language = PyBytes_FromStringAndSize("accept-language", 15);
    st->sec_gpc = PyBytes_FromStringAndSize("sec-gpc", 7);
    if (st->cookie == NULL || st->accept_language == NULL || st->sec_gpc == NULL)
        return -1;
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = state_of(module);
    Py_VISIT(st->cookie);
    Py_VISIT(st->accept_language);
    Py_VISIT(st->sec_gpc);
    return 0;
}

static int
module_clear(PyObject *module)
{
    State *st = state_of(module);
    Py_CLEAR(st->cookie);
    Py_CLEAR(st->accept_language);
    Py_CLEAR(st->sec_gpc);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "consent.core._speedups",
    .m_doc = "Compiled twins of the pure kernels of consent.core (optional; see kernels.py).",
    .m_size = sizeof(State),
    .m_methods = methods,
    .m_slots = slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module_def);
}
