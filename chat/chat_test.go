package chat

import (
	"errors"
	"testing"
)

// SmolLM2-135M-Instruct's tokenizer_config.json chat_template.
const smolTmpl = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

const llama2Tmpl = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"

const llama3Tmpl = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

func TestChatMLSmolLM2DefaultSystem(t *testing.T) {
	got, err := Apply(smolTmpl, "", "What is 2+2?")
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" +
		"<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got, _ = Apply(smolTmpl, "Be brief.", "Hi")
	want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// A ChatML template without an injected system prompt, escaped newlines.
	plain := `{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}`
	got, _ = Apply(plain, "", "Hi")
	if got != "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" {
		t.Fatalf("got %q", got)
	}
	// Qwen-style escaped literal.
	qwen := `{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{{'<|im_start|>' + message['role'] + '\n'}}`
	tp, _ := Detect(qwen)
	if tp.DefaultSystem != "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." {
		t.Fatalf("qwen default %q", tp.DefaultSystem)
	}
}

func TestLlama2(t *testing.T) {
	got, err := Apply(llama2Tmpl, "Be nice.", " Hello ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHello [/INST]"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	tp, _ := Detect(llama2Tmpl)
	got, _ = tp.Render([]Message{{"user", "a"}, {"assistant", "b"}, {"user", "c"}}, true)
	if want := "[INST] a [/INST]b</s>[INST] c [/INST]"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestLlama3(t *testing.T) {
	got, err := Apply(llama3Tmpl, "sys", "hi ")
	if err != nil {
		t.Fatal(err)
	}
	want := "<|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
	if got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	if _, err := Apply("", "", "x"); !errors.Is(err, ErrNoTemplate) {
		t.Fatal(err)
	}
	if _, err := Apply("{{ messages }}", "", "x"); !errors.Is(err, ErrUnknownTemplate) {
		t.Fatal(err)
	}
	tp, _ := Detect(smolTmpl)
	if _, err := tp.Render([]Message{{"tool", "x"}}, false); err == nil {
		t.Fatal("no error for unknown role")
	}
}
