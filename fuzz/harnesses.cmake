# The fuzz harnesses and the libraries each needs: one list for fuzz/ (libFuzzer builds) and tests/fuzz/ (replays).
set(PHX_FUZZ_HARNESSES safetensors_header model_config tokenizer_json api_request step_batch step_reply)
set(PHX_FUZZ_LIBS_safetensors_header phx_model)
set(PHX_FUZZ_LIBS_model_config phx_model)
set(PHX_FUZZ_LIBS_tokenizer_json phx_model)
set(PHX_FUZZ_LIBS_api_request phx_coordinator)
set(PHX_FUZZ_LIBS_step_batch phx_control phx_worker)
set(PHX_FUZZ_LIBS_step_reply phx_control)
