# The part of librdkafka's C API that the compiled client paths call (declared here: the
# librdkafka that confluent-kafka loaded ships without its header). Types and values follow
# librdkafka's rdkafka.h, which keeps them ABI-stable across versions.
from libc.stdint cimport int32_t, int64_t

cdef extern from *:
    """
    typedef struct rd_kafka_s rd_kafka_t;
    typedef struct rd_kafka_topic_s rd_kafka_topic_t;
    typedef struct rd_kafka_queue_s rd_kafka_queue_t;
    typedef struct rd_kafka_headers_s rd_kafka_headers_t;
    typedef struct rd_kafka_conf_s rd_kafka_conf_t;
    typedef struct rd_kafka_error_s rd_kafka_error_t;
    typedef struct rd_kafka_consumer_group_metadata_s rd_kafka_consumer_group_metadata_t;
    typedef struct kstreams_rd_kafka_topic_partition_s {
        char *topic;
        int32_t partition;
        int64_t offset;
        void *metadata;
        size_t metadata_size;
        void *opaque;
        int err;
        void *_private;
    } rd_kafka_topic_partition_t;
    typedef struct kstreams_rd_kafka_topic_partition_list_s {
        int cnt;
        int size;
        rd_kafka_topic_partition_t *elems;
    } rd_kafka_topic_partition_list_t;
    typedef struct kstreams_rd_kafka_vu_s {
        int vtype;
        union {
            const char *cstr;
            rd_kafka_topic_t *rkt;
            int i;
            int32_t i32;
            int64_t i64;
            struct { void *ptr; size_t size; } mem;
            rd_kafka_headers_t *headers;
            void *ptr;
            char _pad[64];
        } u;
    } rd_kafka_vu_t;
    typedef struct kstreams_rd_kafka_message_s {
        int err;
        rd_kafka_topic_t *rkt;
        int32_t partition;
        void *payload;
        size_t len;
        void *key;
        size_t key_len;
        int64_t offset;
        void *_private;
    } rd_kafka_message_t;
    """
    ctypedef struct rd_kafka_t
    ctypedef struct rd_kafka_topic_t
    ctypedef struct rd_kafka_queue_t
    ctypedef struct rd_kafka_headers_t
    ctypedef struct rd_kafka_conf_t
    ctypedef struct rd_kafka_error_t
    ctypedef struct rd_kafka_consumer_group_metadata_t
    ctypedef struct rd_kafka_topic_partition_t:
        char *topic
        int32_t partition
        int64_t offset
        void *metadata
        size_t metadata_size
    ctypedef struct rd_kafka_topic_partition_list_t:
        int cnt
    ctypedef struct rd_kafka_vu_mem:
        void *ptr
        size_t size
    ctypedef union rd_kafka_vu_value:
        const char *cstr
        rd_kafka_topic_t *rkt
        int i
        int32_t i32
        int64_t i64
        rd_kafka_vu_mem mem
        rd_kafka_headers_t *headers
    ctypedef struct rd_kafka_vu_t:
        int vtype
        rd_kafka_vu_value u
    ctypedef struct rd_kafka_message_t:
        int err
        rd_kafka_topic_t *rkt
        int32_t partition
        void *payload
        size_t len
        void *key
        size_t key_len
        int64_t offset

cdef enum:
    RD_KAFKA_PRODUCER = 0
    RD_KAFKA_CONSUMER = 1
    RD_KAFKA_RESP_ERR_NO_ERROR = 0
    RD_KAFKA_RESP_ERR__PARTITION_EOF = -191
    RD_KAFKA_RESP_ERR__QUEUE_FULL = -184
    RD_KAFKA_RESP_ERR__FATAL = -150
    RD_KAFKA_CONF_OK = 0
    RD_KAFKA_MSG_F_COPY = 0x2
    RD_KAFKA_VTYPE_END = 0
    RD_KAFKA_VTYPE_RKT = 2
    RD_KAFKA_VTYPE_PARTITION = 3
    RD_KAFKA_VTYPE_VALUE = 4
    RD_KAFKA_VTYPE_KEY = 5
    RD_KAFKA_VTYPE_MSGFLAGS = 7
    RD_KAFKA_VTYPE_TIMESTAMP = 8
    RD_KAFKA_VTYPE_HEADERS = 10
    RD_KAFKA_TIMESTAMP_CREATE_TIME = 1

ctypedef void (*dr_msg_cb_t)(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque) noexcept
ctypedef void (*error_cb_t)(rd_kafka_t *rk, int err, const char *reason, void *opaque) noexcept
ctypedef void (*log_cb_t)(const rd_kafka_t *rk, int level, const char *fac, const char *buf) noexcept

ctypedef struct Api:
    const char *(*name)(const rd_kafka_t *rk) noexcept nogil
    int (*type)(const rd_kafka_t *rk) noexcept nogil
    const char *(*err2str)(int err) noexcept nogil
    const char *(*topic_name)(const rd_kafka_topic_t *rkt) noexcept nogil
    rd_kafka_queue_t *(*queue_new)(rd_kafka_t *rk) noexcept nogil
    void (*queue_destroy)(rd_kafka_queue_t *rkqu) noexcept nogil
    rd_kafka_queue_t *(*queue_get_partition)(rd_kafka_t *rk, const char *topic, int32_t partition) noexcept nogil
    void (*queue_forward)(rd_kafka_queue_t *src, rd_kafka_queue_t *dst) noexcept nogil
    Py_ssize_t (*consume_batch_queue)(rd_kafka_queue_t *rkqu, int timeout_ms, rd_kafka_message_t **rkmessages,
                                      size_t rkmessages_size) noexcept nogil
    void (*message_destroy)(rd_kafka_message_t *rkmessage) noexcept nogil
    const char *(*message_errstr)(const rd_kafka_message_t *rkmessage) noexcept nogil
    int64_t (*message_timestamp)(const rd_kafka_message_t *rkmessage, int *tstype) noexcept nogil
    int (*message_headers)(const rd_kafka_message_t *rkmessage, rd_kafka_headers_t **hdrsp) noexcept nogil
    int (*header_get_all)(const rd_kafka_headers_t *hdrs, size_t idx, const char **namep, const void **valuep,
                          size_t *sizep) noexcept nogil

    # the producer
    rd_kafka_conf_t *(*conf_new)() noexcept nogil
    int (*conf_set)(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size) noexcept nogil
    void (*conf_destroy)(rd_kafka_conf_t *conf) noexcept nogil
    void (*conf_set_opaque)(rd_kafka_conf_t *conf, void *opaque) noexcept nogil
    void (*conf_set_dr_msg_cb)(rd_kafka_conf_t *conf, dr_msg_cb_t cb) noexcept nogil
    void (*conf_set_error_cb)(rd_kafka_conf_t *conf, error_cb_t cb) noexcept nogil
    rd_kafka_t *(*new)(int type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size) noexcept nogil
    void (*destroy)(rd_kafka_t *rk) noexcept nogil
    int (*poll)(rd_kafka_t *rk, int timeout_ms) noexcept nogil
    int (*flush)(rd_kafka_t *rk, int timeout_ms) noexcept nogil
    int (*outq_len)(rd_kafka_t *rk) noexcept nogil
    int (*fatal_error)(rd_kafka_t *rk, char *errstr, size_t errstr_size) noexcept nogil
    rd_kafka_topic_t *(*topic_new)(rd_kafka_t *rk, const char *topic, void *conf) noexcept nogil
    void (*topic_destroy)(rd_kafka_topic_t *rkt) noexcept nogil
    rd_kafka_error_t *(*produceva)(rd_kafka_t *rk, const rd_kafka_vu_t *vus, size_t cnt) noexcept nogil
    rd_kafka_headers_t *(*headers_new)(size_t initial_count) noexcept nogil
    void (*headers_destroy)(rd_kafka_headers_t *hdrs) noexcept nogil
    int (*header_add)(rd_kafka_headers_t *hdrs, const char *name, Py_ssize_t name_size, const void *value,
                      Py_ssize_t value_size) noexcept nogil
    int (*error_code)(const rd_kafka_error_t *error) noexcept nogil
    const char *(*error_string)(const rd_kafka_error_t *error) noexcept nogil
    int (*error_is_fatal)(const rd_kafka_error_t *error) noexcept nogil
    int (*error_is_retriable)(const rd_kafka_error_t *error) noexcept nogil
    int (*error_txn_requires_abort)(const rd_kafka_error_t *error) noexcept nogil
    void (*error_destroy)(rd_kafka_error_t *error) noexcept nogil
    rd_kafka_error_t *(*init_transactions)(rd_kafka_t *rk, int timeout_ms) noexcept nogil
    rd_kafka_error_t *(*begin_transaction)(rd_kafka_t *rk) noexcept nogil
    rd_kafka_error_t *(*send_offsets_to_transaction)(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *offsets,
                                                     const rd_kafka_consumer_group_metadata_t *cgmetadata,
                                                     int timeout_ms) noexcept nogil
    rd_kafka_error_t *(*commit_transaction)(rd_kafka_t *rk, int timeout_ms) noexcept nogil
    rd_kafka_error_t *(*abort_transaction)(rd_kafka_t *rk, int timeout_ms) noexcept nogil
    rd_kafka_error_t *(*consumer_group_metadata_read)(rd_kafka_consumer_group_metadata_t **cgmdp, const void *buffer,
                                                      size_t size) noexcept nogil
    void (*consumer_group_metadata_destroy)(rd_kafka_consumer_group_metadata_t *cgmd) noexcept nogil
    rd_kafka_topic_partition_list_t *(*topic_partition_list_new)(int size) noexcept nogil
    rd_kafka_topic_partition_t *(*topic_partition_list_add)(rd_kafka_topic_partition_list_t *rktparlist,
                                                            const char *topic, int32_t partition) noexcept nogil
    void (*topic_partition_list_destroy)(rd_kafka_topic_partition_list_t *rktparlist) noexcept nogil
    void (*conf_set_log_cb)(rd_kafka_conf_t *conf, log_cb_t cb) noexcept nogil
    int (*set_log_queue)(rd_kafka_t *rk, rd_kafka_queue_t *rkqu) noexcept nogil
    void *(*opaque)(const rd_kafka_t *rk) noexcept nogil

cdef Api *api() except NULL
cdef rd_kafka_t *client_handle(object client, int client_type, str client_id) except NULL
cdef bint client_open_on(object client, rd_kafka_t *rk)
cdef list message_headers(Api *a, const rd_kafka_message_t *m)
