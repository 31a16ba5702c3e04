// zctls_test_ssl_loader: a program that is not linked to libssl and gets
// it from a module (ssl_plugin.cpp), in each of the ways a process can:
//
//   probe                 nothing loaded: is SSL_sendfile in the global
//                         scope?  (It must not be: a program probing for
//                         kTLS support would think libssl is there.)
//   global PLUGIN FILE... dlopen(PLUGIN, RTLD_NOW | RTLD_GLOBAL), send
//   local PLUGIN FILE...  dlopen(PLUGIN, RTLD_NOW | RTLD_LOCAL), send
//   deepbind PLUGIN FILE...
//                         RTLD_LOCAL | RTLD_DEEPBIND: the module and its
//                         libssl look in their own scope first
//
// (A second copy of libssl in a new link-map namespace, dlmopen, is not
// among them: the module's libstdc++ crashes there without the shim too.)
// Prints what the module prints (ktls send=, each file's flag, bytes ok)
// prefixed by the copy's name; exit status 0 only if every send worked.
#include <dlfcn.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using SendFn = int (*)(int, const char* const*);

int send_through(void* module, const char* label, const std::vector<const char*>& files) {
  if (module == nullptr) {
    std::printf("%s: cannot load: %s\n", label, dlerror());
    return 1;
  }
  auto send = reinterpret_cast<SendFn>(dlsym(module, "zctls_plugin_send"));
  if (send == nullptr) return 1;
  std::printf("%s:\n", label);
  std::fflush(stdout);
  return send(static_cast<int>(files.size()), files.data());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "probe" && argc == 2) {
    std::printf("SSL_sendfile in the global scope: %s\n",
                dlsym(RTLD_DEFAULT, "SSL_sendfile") != nullptr ? "yes" : "no");
    return 0;
  }
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s probe | global|local|deepbind PLUGIN FILE...\n", argv[0]);
    return 2;
  }
  const char* plugin = argv[2];
  const std::vector<const char*> files(argv + 3, argv + argc);
  if (mode == "global")
    return send_through(dlopen(plugin, RTLD_NOW | RTLD_GLOBAL), "global", files);
  if (mode == "local") return send_through(dlopen(plugin, RTLD_NOW | RTLD_LOCAL), "local", files);
  if (mode == "deepbind")
    return send_through(dlopen(plugin, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND), "deepbind", files);
  return 2;
}
