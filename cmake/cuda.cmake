# Decides whether the CUDA backend is built. nvcc lives in /usr/local/cuda/bin and is usually not
# on PATH, so AUTO looks there too. Sets LLMSERVE_HAS_CUDA.
set(LLMSERVE_HAS_CUDA OFF)
if(NOT LLMSERVE_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(LLMSERVE_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
    if(LLMSERVE_NVCC)
      set(CMAKE_CUDA_COMPILER ${LLMSERVE_NVCC})
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER)
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a)
    endif()
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc's C++20 flag (it needs one: CMAKE_CXX_STANDARD 20 carries over
    # to CUDA sources), so it is named here.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    # sm_90a (wgmma, setmaxnreg) needs the -gencode spelling; -arch=sm_90a alone also runs a plain
    # sm_90 pass that rejects them.
    if(CMAKE_CUDA_ARCHITECTURES STREQUAL "90a")
      set(CMAKE_CUDA_ARCHITECTURES OFF)
      add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-gencode=arch=compute_90a,code=sm_90a>")
    endif()
    add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-Xcompiler -Wall>"
                        "$<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>")
    find_package(CUDAToolkit REQUIRED)
    set(LLMSERVE_HAS_CUDA ON)
    message(STATUS "llmserve: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, arch ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(LLMSERVE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LLMSERVE_CUDA=ON but nvcc was not found (looked on PATH and in /usr/local/cuda/bin)")
  else()
    message(STATUS "llmserve: CUDA backend OFF (nvcc not found)")
  endif()
else()
  message(STATUS "llmserve: CUDA backend OFF (LLMSERVE_CUDA=OFF)")
endif()
