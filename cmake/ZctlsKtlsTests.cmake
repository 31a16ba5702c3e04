# CTest wiring for tests that need a kernel with kTLS.
#
# Every kTLS test case is registered once per kernel of the matrix as
# ktls/<kernel>/<Suite.Case> (or, if it matches zctls_add_ktls_tests'
# KERNEL_INDEPENDENT regex, on INDEPENDENT_KERNEL only, else the matrix's
# last kernel), labelled
# "ktls", and run through
# `tests/vm/session exec`.  A fixture per kernel (vm/<kernel>/start and
# vm/<kernel>/stop) boots one guest that all of that kernel's tests share,
# or decides to run them natively (ZCTLS_TEST_VM, see tests/vm/session).
#
# The case list comes from the test binary itself (--gtest_list_tests) at
# build time, as gtest_discover_tests does; listing needs no kTLS.  Each
# case writes a JUnit XML report to <build>/test-results/<kernel>/.
#
# With one vCPU per guest (ZCTLS_VM_CPUS, below: CTest's default), every
# test in a kernel's guest holds the resource lock guest-<kernel>: one test
# at a time per guest.  Two tests in it shared its one vCPU while CTest's
# other slot could have kept a second guest, and the second core, busy (CI,
# 2026-12-07: nginx-e2e and bench-quick together on 6.1 for 7 minutes, one
# core idle).  A guest with more vCPUs (scripts/sanitize's one guest has
# all the cores) runs as many tests at once.  The tests on the emulated
# offload NIC hold nic-<kernel> in any case: its loss control and counters
# serve one test at a time.

set(ZCTLS_VM_CACHE_DIR "${PROJECT_BINARY_DIR}/vm" CACHE PATH "kTLS bench cache (kernels, sessions)")
set(ZCTLS_TEST_RESULTS_DIR "${PROJECT_BINARY_DIR}/test-results")
# vCPUs of each guest CTest boots.  CTest runs up to --parallel tests, so
# up to that many guests, at once: their vCPUs must not outnumber the
# host's cores.  Measured on 2 cores (qemu TCG), nginx-e2e's phases: 145 s
# alone with 2 vCPUs, 580 s beside another 2-vCPU guest, 194 s beside
# another with 1 vCPU each (a descheduled vCPU holding a guest lock stalls
# the other).
set(ZCTLS_VM_CPUS 1 CACHE STRING "vCPUs of each guest CTest boots (tests/vm/run: ZCTLS_VM_CPUS)")
set(ZCTLS_VM_TEST_ENV
  "ZCTLS_VM_CACHE=${ZCTLS_VM_CACHE_DIR};ZCTLS_BUILD_DIR=${PROJECT_BINARY_DIR};ZCTLS_VM_CPUS=${ZCTLS_VM_CPUS}")
set(_zctls_session "${PROJECT_SOURCE_DIR}/tests/vm/session")

# The resource locks of a test in KERNEL's guest (DEVICE: on its offload
# NIC), into OUT: see above.
function(zctls_guest_locks out kernel device)
  set(locks "")
  if(ZCTLS_VM_CPUS EQUAL 1)
    list(APPEND locks guest-${kernel})
  endif()
  if(device)
    list(APPEND locks nic-${kernel})
  endif()
  set(${out} "${locks}" PARENT_SCOPE)
endfunction()

function(zctls_ktls_sessions)
  cmake_parse_arguments(ARG "" "PROBE" "KERNELS" ${ARGN})
  list(GET ARG_KERNELS 0 first)
  foreach(kernel IN LISTS ARG_KERNELS)
    add_test(NAME vm/${kernel}/start
      COMMAND ${_zctls_session} start --kernel ${kernel} --probe ${ARG_PROBE}
              --results ${ZCTLS_TEST_RESULTS_DIR}/${kernel})
    add_test(NAME vm/${kernel}/stop COMMAND ${_zctls_session} stop --kernel ${kernel})
    set_tests_properties(vm/${kernel}/start PROPERTIES
      FIXTURES_SETUP vm-${kernel} LABELS "ktls;vm" TIMEOUT 900
      ENVIRONMENT "${ZCTLS_VM_TEST_ENV}")
    set_tests_properties(vm/${kernel}/stop PROPERTIES
      FIXTURES_CLEANUP vm-${kernel} LABELS "ktls;vm" TIMEOUT 120
      ENVIRONMENT "${ZCTLS_VM_TEST_ENV}")
  endforeach()
  set_property(GLOBAL PROPERTY ZCTLS_FIRST_KERNEL ${first})
endfunction()

# DEVICE_CASES: the cases (a regex) that use the emulated TLS-offload NIC:
# they need its fixture (offload-nic-<kernel>, zctls_offload_nic) and hold
# the NIC's lock (nic-<kernel>).  SANITIZE_SKIP (ZCTLS_SANITIZE_SKIP): the
# first kernel's cases not labelled "sanitized".  WRAPPER: a command the binary runs under in the guest
# (tests/offload-nic/nic srv: in the NIC's server namespace).
function(zctls_add_ktls_tests target)
  cmake_parse_arguments(ARG "" "KERNEL_INDEPENDENT;INDEPENDENT_KERNEL;DEVICE_CASES" "KERNELS;WRAPPER"
    ${ARGN})
  get_property(first GLOBAL PROPERTY ZCTLS_FIRST_KERNEL)
  set(ctest_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_ktls_tests.cmake")
  string(REPLACE ";" "," kernels "${ARG_KERNELS}")
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND}
      -D TEST_EXECUTABLE=$<TARGET_FILE:${target}>
      -D CTEST_FILE=${ctest_file}
      -D SESSION=${_zctls_session}
      -D KERNELS=${kernels}
      "-DKERNEL_INDEPENDENT=${ARG_KERNEL_INDEPENDENT}"
      "-DINDEPENDENT_KERNEL=${ARG_INDEPENDENT_KERNEL}"
      "-DDEVICE_CASES=${ARG_DEVICE_CASES}"
      "-DSANITIZE_SKIP=${ZCTLS_SANITIZE_SKIP}"
      -D VM_CPUS=${ZCTLS_VM_CPUS}
      "-DWRAPPER=${ARG_WRAPPER}"
      -D FIRST_KERNEL=${first}
      -D RESULTS_DIR=${ZCTLS_TEST_RESULTS_DIR}
      -D VM_CACHE=${ZCTLS_VM_CACHE_DIR}
      -D BUILD_DIR=${PROJECT_BINARY_DIR}
      -P ${PROJECT_SOURCE_DIR}/cmake/ZctlsKtlsDiscover.cmake
    BYPRODUCTS ${ctest_file}
    VERBATIM)
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${ctest_file})
  # The list is written after each link: relink when what it is made from
  # (the calling CMakeLists.txt's regexes, the script) changes.
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${CMAKE_CURRENT_LIST_FILE}
    ${PROJECT_SOURCE_DIR}/cmake/ZctlsKtlsDiscover.cmake)
endfunction()

# A script (not a gtest binary) that needs kTLS: registered as
# ktls/<kernel>/<name> on each kernel, in that kernel's shared guest.
# TIMEOUT (seconds, default 900) bounds it in the guest and in CTest; ARGS
# are passed to it.  USERLAND <suite> runs it chrooted into that Debian
# suite's root (tests/vm/userland; zctls_userland() makes the root) and
# names it ktls/<kernel>/<suite>/<name>.
# DEVICE: it uses the emulated TLS-offload NIC (fixture and lock, as
# zctls_add_ktls_tests' DEVICE_CASES).
function(zctls_add_ktls_script name script)
  cmake_parse_arguments(ARG "DEVICE" "TIMEOUT;USERLAND" "KERNELS;ARGS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 900)
  endif()
  math(EXPR ctest_timeout "${ARG_TIMEOUT} + 60")
  get_property(first GLOBAL PROPERTY ZCTLS_FIRST_KERNEL)
  set(userland "")
  set(suffix ${name})
  if(ARG_USERLAND)
    set(userland ${PROJECT_SOURCE_DIR}/tests/vm/userland exec ${ARG_USERLAND} --)
    set(suffix ${ARG_USERLAND}/${name})
  endif()
  foreach(kernel IN LISTS ARG_KERNELS)
    add_test(NAME ktls/${kernel}/${suffix}
      COMMAND ${_zctls_session} exec --kernel ${kernel} --first-kernel ${first}
              --timeout ${ARG_TIMEOUT} -- ${userland} ${script} ${ARG_ARGS})
    set(fixtures vm-${kernel})
    set(labels ktls)
    if(ARG_USERLAND)
      list(APPEND fixtures userland-${ARG_USERLAND})
    endif()
    if(ARG_DEVICE)
      list(APPEND fixtures offload-nic-${kernel})
      list(APPEND labels device)
    endif()
    zctls_guest_locks(locks ${kernel} "${ARG_DEVICE}")
    set_tests_properties(ktls/${kernel}/${suffix} PROPERTIES
      LABELS "${labels}" FIXTURES_REQUIRED "${fixtures}" SKIP_RETURN_CODE 77
      TIMEOUT ${ctest_timeout} ENVIRONMENT "${ZCTLS_VM_TEST_ENV}")
    if(locks)
      set_tests_properties(ktls/${kernel}/${suffix} PROPERTIES RESOURCE_LOCK "${locks}")
    endif()
  endforeach()
endfunction()

# The cached root of a Debian suite for USERLAND tests: a fixture, made
# (or found fresh) once per CTest run.
function(zctls_userland suite)
  add_test(NAME userland/${suite}/prepare
    COMMAND ${PROJECT_SOURCE_DIR}/tests/vm/userland prepare ${suite})
  set_tests_properties(userland/${suite}/prepare PROPERTIES
    FIXTURES_SETUP userland-${suite} LABELS "ktls;vm" TIMEOUT 900 SKIP_RETURN_CODE 77
    ENVIRONMENT "${ZCTLS_VM_TEST_ENV}")
endfunction()

# The emulated TLS-offload NIC (tests/offload-nic/) for each kernel: built
# on the host (offload-nic/<kernel>/build: headers from Debian's archive,
# that kernel's compiler), brought up in the kernel's shared guest
# (ktls/<kernel>/offload-nic/up: the module and its two namespaces).  Tests
# that use it require the fixture offload-nic-<kernel> and hold the lock
# nic-<kernel>.  Where the build or the bring-up cannot be done (the newest
# kernel's headers, a host running kTLS natively: the driver is only ever
# loaded into a bench guest), they are skipped with the reason.
function(zctls_offload_nic)
  cmake_parse_arguments(ARG "" "" "KERNELS" ${ARGN})
  get_property(first GLOBAL PROPERTY ZCTLS_FIRST_KERNEL)
  foreach(kernel IN LISTS ARG_KERNELS)
    add_test(NAME offload-nic/${kernel}/build
      COMMAND ${PROJECT_SOURCE_DIR}/tests/offload-nic/build --kernel ${kernel})
    set_tests_properties(offload-nic/${kernel}/build PROPERTIES
      FIXTURES_SETUP offload-nic-build-${kernel} LABELS "ktls;vm;device" TIMEOUT 600
      SKIP_RETURN_CODE 77 ENVIRONMENT "${ZCTLS_VM_TEST_ENV}")
    add_test(NAME ktls/${kernel}/offload-nic/up
      COMMAND ${_zctls_session} exec --kernel ${kernel} --first-kernel ${first} --timeout 120
              -- ${PROJECT_SOURCE_DIR}/tests/offload-nic/nic up)
    set_tests_properties(ktls/${kernel}/offload-nic/up PROPERTIES
      FIXTURES_REQUIRED "vm-${kernel};offload-nic-build-${kernel}"
      FIXTURES_SETUP offload-nic-${kernel}
      LABELS "ktls;device" TIMEOUT 180 SKIP_RETURN_CODE 77 ENVIRONMENT "${ZCTLS_VM_TEST_ENV}")
    zctls_guest_locks(locks ${kernel} ON)
    set_tests_properties(ktls/${kernel}/offload-nic/up PROPERTIES RESOURCE_LOCK "${locks}")
  endforeach()
endfunction()
