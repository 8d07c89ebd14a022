# cython: language_level=3
"""A direct binding to the librdkafka that confluent-kafka loaded, for the hot client paths.

confluent-kafka wraps every consumed record in a ``Message`` object and parses the arguments of
every ``produce()`` call; the compiled paths here (:mod:`kstreams._core.fetcher`) talk to the
same librdkafka instance directly instead. The library is found among the process's mapped
files (it is whatever confluent-kafka was built with: its wheel's bundled copy or a system
library) and its functions are looked up by name, so no librdkafka header or extra library is
needed at build time.

``client_handle`` reads the ``rd_kafka_t`` of a confluent-kafka client: the first field of its
client object in every confluent-kafka release so far. It is only trusted for confluent-kafka
2.x, and checked against the client's type and name before use.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport strncmp, strlen

import os
import re

import confluent_kafka

cdef extern from "<dlfcn.h>" nogil:
    void *dlopen(const char *filename, int flags)
    void *dlsym(void *handle, const char *symbol)
    const char *dlerror()
    int RTLD_NOW
    int RTLD_NOLOAD

cdef extern from *:
    """
    typedef struct { PyObject_HEAD void *rk; } kstreams_confluent_client;
    """
    ctypedef struct kstreams_confluent_client:
        void *rk

_LIBRARY_NAME = re.compile(r"librdkafka(-[0-9a-f]+)?\.so(\.[0-9]+)*$")

# The fields of ``Api`` in declaration order: field ``f`` holds librdkafka's ``rd_kafka_<f>``. All
# are function pointers, so the struct is filled as an array (a test checks the order).
API_FIELDS = (
    "name",
    "type",
    "err2str",
    "topic_name",
    "queue_new",
    "queue_destroy",
    "queue_get_partition",
    "queue_forward",
    "consume_batch_queue",
    "message_destroy",
    "message_errstr",
    "message_timestamp",
    "message_headers",
    "header_get_all",
    "conf_new",
    "conf_set",
    "conf_destroy",
    "conf_set_opaque",
    "conf_set_dr_msg_cb",
    "conf_set_error_cb",
    "new",
    "destroy",
    "poll",
    "flush",
    "outq_len",
    "fatal_error",
    "topic_new",
    "topic_destroy",
    "produceva",
    "headers_new",
    "headers_destroy",
    "header_add",
    "error_code",
    "error_string",
    "error_is_fatal",
    "error_is_retriable",
    "error_txn_requires_abort",
    "error_destroy",
    "init_transactions",
    "begin_transaction",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
    "consumer_group_metadata_read",
    "consumer_group_metadata_destroy",
    "topic_partition_list_new",
    "topic_partition_list_add",
    "topic_partition_list_destroy",
    "conf_set_log_cb",
    "set_log_queue",
    "opaque",
)

cdef Api _api
cdef bint _loaded = False
cdef str _unavailable = None


def library_path():
    """The path of the librdkafka mapped into this process (``None`` if there is none)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and _LIBRARY_NAME.match(os.path.basename(fields[5].strip())):
                    return fields[5].strip()
    except OSError:
        return None
    return None


cdef void *_symbol(void *lib, bytes name) except NULL:
    cdef void *fn = dlsym(lib, name)
    if fn == NULL:
        raise ImportError(f"librdkafka has no symbol {name.decode()}")
    return fn


cdef int _load() except -1:
    global _loaded
    if sizeof(Api) != len(API_FIELDS) * sizeof(void *):
        raise ImportError("the librdkafka function table is declared inconsistently")
    path = library_path()
    if path is None:
        raise ImportError("no librdkafka is mapped into this process")
    cdef bytes bpath = os.fsencode(path)
    cdef void *lib = dlopen(bpath, RTLD_NOW | RTLD_NOLOAD)
    if lib == NULL:
        raise ImportError(f"cannot open {path}: {(<bytes>dlerror()).decode(errors='replace')}")
    cdef void **slots = <void **>&_api
    for i, field in enumerate(API_FIELDS):
        slots[i] = _symbol(lib, b"rd_kafka_" + field.encode())
    _loaded = True
    return 0


cdef Api *api() except NULL:
    """The function table; raises ``ImportError`` (once and for all) if librdkafka cannot be bound."""
    global _unavailable
    if not _loaded:
        if _unavailable is not None:
            raise ImportError(_unavailable)
        try:
            _load()
        except ImportError as exc:
            _unavailable = str(exc)
            raise
    return &_api


def unavailable_reason():
    """Why the direct binding cannot be used here, or ``None`` when it can."""
    try:
        api()
    except ImportError as exc:
        return str(exc)
    major = confluent_kafka.version()[0].split(".")[0]
    if major != "2":
        return f"confluent-kafka {confluent_kafka.version()[0]} is not a 2.x release"
    return None


cdef rd_kafka_t *client_handle(object client, int client_type, str client_id) except NULL:
    """The ``rd_kafka_t`` of an open confluent-kafka client whose ``client.id`` is ``client_id``."""
    cdef Api *a = api()
    reason = unavailable_reason()
    if reason is not None:
        raise ImportError(reason)
    expected = confluent_kafka.Consumer if client_type == RD_KAFKA_CONSUMER else confluent_kafka.Producer
    if not isinstance(client, expected):
        raise TypeError(f"expected a confluent_kafka.{expected.__name__}, got {type(client).__name__}")
    cdef rd_kafka_t *rk = <rd_kafka_t *>(<kstreams_confluent_client *><void *>client).rk
    if rk == NULL:
        raise ValueError("the client is closed")
    cdef bytes prefix = client_id.encode()
    cdef const char *name = a.name(rk)
    if a.type(rk) != client_type or <Py_ssize_t>strlen(name) < len(prefix) or strncmp(name, prefix, len(prefix)) != 0:
        raise ImportError("the client's librdkafka handle does not look like one (confluent-kafka's layout changed?)")
    return rk


cdef bint client_open_on(object client, rd_kafka_t *rk):
    """True while the confluent-kafka ``client`` still runs on ``rk`` (its ``close()`` destroys it)."""
    return rk != NULL and (<kstreams_confluent_client *><void *>client).rk == <void *>rk


cdef list message_headers(Api *a, const rd_kafka_message_t *m):
    """The headers of a message as ``[(name, value or None), ...]``, or ``None`` if it has none."""
    cdef rd_kafka_headers_t *hdrs = NULL
    cdef const char *name
    cdef const void *value
    cdef size_t size
    cdef size_t idx = 0
    if a.message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR or hdrs == NULL:
        return None
    out = []
    while a.header_get_all(hdrs, idx, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR:
        out.append(((<bytes>name).decode(errors="replace"),
                    PyBytes_FromStringAndSize(<const char *>value, size) if value != NULL else None))
        idx += 1
    return out
