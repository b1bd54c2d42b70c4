// Package tokenizer turns text into token ids and back exactly as llama.cpp does (llama_tokenize
// with add_special / parse_special, llama_token_to_piece, llama_detokenize; checked against
// llama.cpp commit 3f545bec).
//
// Two vocabulary models are supported:
//
//   - "llama": SentencePiece-style BPE with scores (llama.cpp's llm_tokenizer_spm). A "▁" is
//     put in front of each text fragment (AddSpacePrefix), spaces become "▁", adjacent symbols
//     are merged highest score first, and characters that end up in no token fall back to <0xXX>
//     byte tokens.
//   - "gpt2": byte-level BPE with merges (llm_tokenizer_bpe). A pre-tokenizer chosen by Vocab.Pre
//     (tokenizer.ggml.pre) cuts the text into words: "default", "gpt2"/"gpt-2", "llama-bpe"
//     (Llama-3), "qwen2", "smollm" (digits one by one, then GPT-2) and their llama.cpp aliases.
//     The splitters are hand-written ports of llama.cpp's, using llama.cpp's own Unicode
//     category tables, so no regexp engine is involved. Words are byte-encoded (GPT-2
//     byte-to-unicode) and merged lowest rank first; merged words are cached.
//
// With parseSpecial, control, unknown and user-defined token texts found in the input become
// those tokens (longest token text first, as tokenizer_st_partition); user-defined tokens are
// always matched.
//
// A Vocab comes from GGUF metadata (VocabFromGGUF, which takes any Metadata such as *gguf.File
// and applies llama.cpp's defaults for missing keys) or from a Hugging Face tokenizer.json plus
// tokenizer_config.json (VocabFromHF).
//
// Decoding: Piece gives one token's bytes (control tokens render as nothing, byte tokens as the
// raw byte), Decode a whole sequence (with llama.cpp's leading-space and clean-up rules), and a
// Streamer emits only complete UTF-8 characters during generation.
package tokenizer
