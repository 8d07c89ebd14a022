"""Build of kstreams: compiles the record loop in ``kstreams/_core`` with Cython.

The extension modules are required: the build fails if they cannot be compiled.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

CORE_MODULES = ["record", "punctuation", "partition_group", "collector", "nodes", "task", "kvstore", "codecs"]
# The direct librdkafka client paths: C only (Cython .pyx), librdkafka bound at run time.
CLIENT_MODULES = ["rdkafka", "fetcher", "producer"]

extensions = [
    Extension(f"kstreams._core.{name}", [f"kstreams/_core/{name}.py"], extra_compile_args=["-O3"])
    for name in CORE_MODULES
] + [
    Extension(f"kstreams._core.{name}", [f"kstreams/_core/{name}.pyx"], extra_compile_args=["-O3"],
              libraries=["dl"])
    for name in CLIENT_MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "embedsignature": True,
            "binding": False,
        },
        annotate=False,
    ),
)
