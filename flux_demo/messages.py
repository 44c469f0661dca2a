"""Everything the package says to a person, by code: errors, faults, notes, link and PNG notices,
progress, rate limits, Stop notices, summaries and result-table words, in English and Korean.

A check raises `InvalidInput("steps", "input.must_be", allowed=..., value=17)`; a fault carries a
`Message`; nothing below the UI writes an English sentence of its own. `str(message)` is the English
text (logs, API callers, `str(err)`); `message.render("ko")` the Korean. A parameter that is itself a
`Message` renders in the same language. An error keeps its English field name in front in every
language ("steps: ..."), so code can match on the field.

Which language a request gets is decided in `flux_demo.ui.i18n.visitor_language`: the page gets the
visitor's, the API and MCP get English.
"""

from __future__ import annotations

import string

LANGUAGES = ("en", "ko")

# Suffixes of the offline models' names (flux_demo/models.py), shown in the visitor's language.
_NAME_SUFFIXES_KO = {"(offline tiny preview)": "(오프라인 소형 미리보기)", "(offline)": "(오프라인)"}

CATALOG: dict[str, dict[str, str]] = {
    # --- titles of the error pop-ups ------------------------------------------------------------
    "title.invalid_input": {"en": "Invalid input", "ko": "잘못된 입력"},
    "title.generation_failed": {"en": "Generation failed", "ko": "생성 실패"},
    "title.out_of_memory": {"en": "Out of GPU memory", "ko": "GPU 메모리 부족"},
    "title.model_unavailable": {"en": "Model unavailable", "ko": "모델을 쓸 수 없음"},
    "title.gpu_unavailable": {"en": "GPU unavailable", "ko": "GPU를 쓸 수 없음"},
    "title.stopped": {"en": "Stopped", "ko": "중지됨"},
    # The headings of Gradio's pop-ups by kind (Gradio shows the kind, not a title: the page renames them).
    "title.info": {"en": "Info", "ko": "안내"},
    "title.warning": {"en": "Warning", "ko": "주의"},
    "title.error": {"en": "Error", "ko": "오류"},
    "title.success": {"en": "Success", "ko": "완료"},
    "title.too_many_requests": {"en": "Too many requests", "ko": "요청이 너무 많음"},
    "title.content_filtered": {"en": "Content filtered", "ko": "콘텐츠 필터에 걸림"},
    # --- bad input: "field: reason" ---------------------------------------------------------------
    "input.field": {"en": "{field}: {reason}", "ko": "{field}: {reason}"},
    # What a field allows, inside the reasons below ("must be a number (from 1 to 16), got str").
    "allowed.number": {"en": "a number", "ko": "숫자"},
    "allowed.finite": {"en": "a finite number", "ko": "유한한 숫자"},
    "allowed.range": {"en": "from {low:g} to {high:g}", "ko": "{low:g}부터 {high:g}까지"},
    "allowed.span": {"en": "{low:g} to {high:g}", "ko": "{low:g}부터 {high:g}까지"},
    "allowed.integer_range": {"en": "an integer from {low} to {high}", "ko": "{low}부터 {high}까지의 정수"},
    "allowed.number_range": {
        "en": "a number from {low:g} to {high:g}",
        "ko": "{low:g}부터 {high:g}까지의 숫자",
    },
    "allowed.sizes": {
        "en": "{low} to {high}, in multiples of {multiple}",
        "ko": "{low}부터 {high}까지({multiple}의 배수)",
    },
    "allowed.output_size": {
        "en": "0 (the first image's size) or {low} to {high} for {model}",
        "ko": "0(첫 이미지 크기) 또는 {model}에서 {low}부터 {high}까지",
    },
    "allowed.images": {"en": "1 to {count} images", "ko": "이미지 1장부터 {count}장까지"},
    "allowed.one_image": {"en": "one image", "ko": "이미지 한 장"},
    "input.must_be": {"en": "must be {allowed}, got {value}", "ko": "{allowed}여야 합니다. 받은 값: {value}"},
    "input.must_be_for": {
        "en": "must be {allowed} for {model}, got {value}",
        "ko": "{model}에서는 {allowed}여야 합니다. 받은 값: {value}",
    },
    "input.not_a_number": {
        "en": "must be a number ({allowed}), got {kind}",
        "ko": "숫자여야 합니다 ({allowed}). 받은 형식: {kind}",
    },
    "input.not_finite": {
        "en": "must be a finite number ({allowed}), got {value}",
        "ko": "유한한 숫자여야 합니다 ({allowed}). 받은 값: {value}",
    },
    "input.not_whole": {
        "en": "must be a whole number ({allowed}), got {value}",
        "ko": "정수여야 합니다 ({allowed}). 받은 값: {value}",
    },
    "input.below_minimum": {
        "en": "Value {value} is less than minimum value {minimum}.",
        "ko": "값 {value}은(는) 최솟값 {minimum}보다 작습니다.",
    },
    "input.above_maximum": {
        "en": "Value {value} is greater than maximum value {maximum}.",
        "ko": "값 {value}은(는) 최댓값 {maximum}보다 큽니다.",
    },
    "input.not_a_choice": {
        "en": "Value: {value} is not in the list of choices: {choices}",
        "ko": "값 {value}은(는) 선택지 {choices}에 없습니다",
    },
    "input.not_a_list": {
        "en": "must be a list of values from {choices}, got {kind}",
        "ko": "{choices} 중에서 고른 값의 목록이어야 합니다. 받은 형식: {kind}",
    },
    "input.one_of": {"en": "must be one of {choices}", "ko": "다음 중 하나여야 합니다: {choices}"},
    "input.one_of_got": {
        "en": "must be one of {choices}, got {value}",
        "ko": "다음 중 하나여야 합니다: {choices}. 받은 값: {value}",
    },
    "input.flag": {"en": "must be true or false", "ko": "true 또는 false여야 합니다"},
    "input.flag_got": {
        "en": "must be true or false, got {value}",
        "ko": "true 또는 false여야 합니다. 받은 값: {value}",
    },
    "input.not_text": {"en": "must be text, got {kind}", "ko": "텍스트여야 합니다. 받은 형식: {kind}"},
    "input.too_long": {
        "en": "must be at most {limit} characters, got {length}",
        "ko": "최대 {limit}자까지입니다. 받은 길이: {length}자",
    },
    "input.control_characters": {
        "en": "must not contain control characters",
        "ko": "제어 문자를 넣을 수 없습니다",
    },
    "input.lone_surrogate": {
        "en": "must be valid Unicode text (it contains a lone surrogate)",
        "ko": "올바른 유니코드 텍스트여야 합니다 (짝이 없는 서로게이트 문자가 있습니다)",
    },
    "input.prompt_required": {
        "en": "is required: describe the image you want",
        "ko": "필수 항목입니다: 원하는 이미지를 설명하세요",
    },
    "input.expected_required": {
        "en": "is required: type the text the image should show",
        "ko": "필수 항목입니다: 이미지에 보여야 할 글자를 입력하세요",
    },
    "input.image_required": {
        "en": "is required: upload the image to score",
        "ko": "필수 항목입니다: 채점할 이미지를 올리세요",
    },
    "input.table": {
        "en": "must be a table {{'headers': [...], 'data': [[...], ...]}} ({error})",
        "ko": "표 {{'headers': [...], 'data': [[...], ...]}} 형식이어야 합니다 ({error})",
    },
    "input.image_format": {
        "en": "must be a PNG, JPEG or WebP image",
        "ko": "PNG, JPEG 또는 WebP 이미지여야 합니다",
    },
    "input.image_format_got": {
        "en": "must be a PNG, JPEG or WebP image, got {format}",
        "ko": "PNG, JPEG 또는 WebP 이미지여야 합니다. 받은 형식: {format}",
    },
    "input.image_unreadable": {
        "en": "must be a PNG, JPEG or WebP image (the file could not be read)",
        "ko": "PNG, JPEG 또는 WebP 이미지여야 합니다 (파일을 읽을 수 없습니다)",
    },
    "input.image_too_large": {
        "en": "must be at most {limit}×{limit} pixels, got {width}×{height}",
        "ko": "최대 {limit}×{limit} 픽셀입니다. 받은 크기: {width}×{height}",
    },
    "input.image_sides": {
        "en": "each side must be {low} to {high} pixels, got {width}×{height}",
        "ko": "각 변은 {low}부터 {high}픽셀까지여야 합니다. 받은 크기: {width}×{height}",
    },
    "input.image_aspect": {
        "en": "aspect ratio must be at most {limit}:1, got {width}×{height}",
        "ko": "가로세로 비율은 최대 {limit}:1입니다. 받은 크기: {width}×{height}",
    },
    "input.could_not_read": {"en": "could not be read ({error})", "ko": "읽을 수 없습니다 ({error})"},
    "input.not_an_image": {
        "en": "must be an image, got {kind}",
        "ko": "이미지여야 합니다. 받은 형식: {kind}",
    },
    "input.not_an_image_file": {
        "en": "must be an image file, got {kind}",
        "ko": "이미지 파일이어야 합니다. 받은 형식: {kind}",
    },
    "input.image_count": {
        "en": "must hold {allowed}, got {count}",
        "ko": "{allowed}여야 합니다. 받은 수: {count}",
    },
    "input.total_pixels": {
        "en": "must hold at most {limit:g} megapixels in all, got {total:.1f}",
        "ko": "모두 합쳐 최대 {limit:g}메가픽셀까지입니다. 받은 크기: {total:.1f}",
    },
    "input.mask_required": {
        "en": "is required: paint the area to repaint in white",
        "ko": "필수 항목입니다: 다시 그릴 영역을 흰색으로 칠하세요",
    },
    "input.mask_size": {
        "en": "must be the same size as the image ({width}×{height}), got {mask_width}×{mask_height}",
        "ko": "이미지와 크기가 같아야 합니다 ({width}×{height}). 받은 크기: {mask_width}×{mask_height}",
    },
    "input.mask_empty": {
        "en": "is empty: paint the area to repaint in white",
        "ko": "비어 있습니다: 다시 그릴 영역을 흰색으로 칠하세요",
    },
    "input.mode_unsupported": {
        "en": "{model} does not offer {mode}{why}; models that do: {able}",
        "ko": "{model}은(는) {mode}을(를) 지원하지 않습니다{why}. 지원하는 모델: {able}",
    },
    "input.mode_unsupported_here": {"en": " here: {reason}", "ko": " (이 서버: {reason})"},
    "input.none": {"en": "none", "ko": "없음"},
    "input.references_full": {
        "en": "at most {limit} images; remove one first.",
        "ko": "최대 {limit}장까지입니다. 먼저 하나를 빼세요.",
    },
    "input.references_hashes": {
        "en": "must be 1 to 10 comma-separated SHA-256 hex digests",
        "ko": "쉼표로 구분한 SHA-256 16진수 값 1개부터 10개까지여야 합니다",
    },
    "input.choose_models": {
        "en": "choose one or more of {choices}",
        "ko": "다음 중 하나 이상을 고르세요: {choices}",
    },
    "input.models_once": {"en": "each model may be chosen once", "ko": "각 모델은 한 번만 고를 수 있습니다"},
    "input.settings_rows": {
        "en": "rows must be [model, steps, guidance]",
        "ko": "각 행은 [model, steps, guidance] 형식이어야 합니다",
    },
    "input.name_models": {"en": "name one or more models", "ko": "모델을 하나 이상 지정하세요"},
    "input.words_text": {
        "en": "must be text: words of the prompt separated by commas, got {value}",
        "ko": "프롬프트의 단어를 쉼표로 구분한 텍스트여야 합니다. 받은 값: {value}",
    },
    "input.word_not_in_prompt": {
        "en": "{word} is not a word of the prompt; its words are: {words}",
        "ko": "{word}은(는) 프롬프트의 단어가 아닙니다. 프롬프트의 단어: {words}",
    },
    "input.too_many_words": {
        "en": "choose at most {limit} words, got {count}",
        "ko": "단어는 {limit}개까지 고를 수 있습니다. 받은 개수: {count}",
    },
    "input.two_encoders": {
        "en": "{model} has one text encoder; the ablation needs a model with two (FLUX.1)",
        "ko": "{model}에는 텍스트 인코더가 하나뿐입니다. 인코더가 두 개인 모델(FLUX.1)이 필요합니다",
    },
    "input.quote_text": {
        "en": 'put the text to render in quotes, for example: a neon sign that says "OPEN" '
        "(use the prompt helper to write one)",
        "ko": '이미지에 넣을 글자를 따옴표로 감싸세요. 예: "OPEN"이라고 쓰인 네온 간판 '
        "(프롬프트 만들기 도구를 써도 됩니다)",
    },
    "input.suite_too_many": {
        "en": "a run makes at most {limit} images; {count} prompts × {models} models is {total}: "
        "choose fewer prompts or models",
        "ko": "한 번에 최대 {limit}장까지 만듭니다. 프롬프트 {count}개 × 모델 {models}개는 {total}장입니다: "
        "프롬프트나 모델을 줄이세요",
    },
    "input.text_empty": {
        "en": "enter the words the image should show (got an empty string)",
        "ko": "이미지에 보여야 할 글자를 입력하세요 (비어 있음)",
    },
    "input.cannot_quote": {
        "en": "cannot quote {text}; it uses every quote mark ({quotes})",
        "ko": "{text}을(를) 따옴표로 감쌀 수 없습니다: 따옴표 {quotes}를 모두 씁니다",
    },
    "input.target_visible": {
        "en": "the text to score against must have a visible character",
        "ko": "채점 기준 글자에 보이는 문자가 있어야 합니다",
    },
    "input.each_target_visible": {
        "en": "each target text must contain at least one visible character",
        "ko": "대상 글자마다 보이는 문자가 하나 이상 있어야 합니다",
    },
    "input.some_target": {
        "en": "give at least one target text, each with a visible character",
        "ko": "보이는 문자가 있는 대상 글자를 하나 이상 주세요",
    },
    "input.png_required": {
        "en": "drop a PNG made by this app (or one with the same metadata keys)",
        "ko": "이 앱이 만든 PNG(또는 같은 메타데이터 키를 가진 PNG)를 놓으세요",
    },
    "input.not_png": {
        "en": "must be a PNG file, got {format}",
        "ko": "PNG 파일이어야 합니다. 받은 형식: {format}",
    },
    "input.unknown_format": {"en": "an unknown format", "ko": "알 수 없는 형식"},
    "input.not_readable_image": {
        "en": "{name} is not a readable image",
        "ko": "{name}은(는) 읽을 수 있는 이미지가 아닙니다",
    },
    "input.no_settings": {
        "en": "no generation settings found; expected text keys {keys}",
        "ko": "생성 설정이 없습니다. 필요한 텍스트 키: {keys}",
    },
    "input.score_object": {
        "en": "must be a score object, got {kind}",
        "ko": "점수 객체여야 합니다. 받은 형식: {kind}",
    },
    "input.score_text": {
        "en": "{name} must be text of at most {limit} characters",
        "ko": "{name}은(는) 최대 {limit}자의 텍스트여야 합니다",
    },
    "input.score_number": {
        "en": "{name} must be a finite number",
        "ko": "{name}은(는) 유한한 숫자여야 합니다",
    },
    "input.score_flag": {
        "en": "{name} must be true or false",
        "ko": "{name}은(는) true 또는 false여야 합니다",
    },
    "input.score_list": {
        "en": "{name} must be a list of at most {limit}",
        "ko": "{name}은(는) 최대 {limit}개 항목의 목록이어야 합니다",
    },
    "input.score_target": {"en": "each target must be an object", "ko": "각 대상은 객체여야 합니다"},
    "input.score_box": {"en": "each box must have 4 points", "ko": "각 상자에는 점이 4개 있어야 합니다"},
    "input.score_point": {"en": "each point must be [x, y]", "ko": "각 점은 [x, y] 형식이어야 합니다"},
    # LoRAs (flux_demo.loras, flux_demo.pipelines.adapters)
    "input.lora_reference": {
        "en": "must be a curated LoRA ({known}) or a Hub repository id such as owner/name, got {value}",
        "ko": "추천 LoRA({known}) 또는 owner/name 같은 Hub 저장소 ID여야 합니다. 받은 값: {value}",
    },
    "input.lora_unknown": {
        "en": "unknown LoRA {value}: choose a curated one ({known}) or give a Hub repository id (owner/name)",
        "ko": "알 수 없는 LoRA {value}: 추천 LoRA({known}) 중에서 고르거나 "
        "Hub 저장소 ID(owner/name)를 주세요",
    },
    "input.lora_hub_off": {
        "en": "this server loads only its curated LoRAs: {known}",
        "ko": "이 서버는 추천 LoRA만 불러옵니다: {known}",
    },
    "input.lora_wrong_model": {
        "en": "{lora} is for {fits}; for this model choose one of: {choices}",
        "ko": "{lora}은(는) {fits}용입니다. 이 모델에서는 다음 중에서 고르세요: {choices}",
    },
    "input.lora_twice": {"en": "{lora} is chosen twice", "ko": "{lora}을(를) 두 번 골랐습니다"},
    "input.lora_pairs": {
        "en": "must be reference:scale pairs separated by commas",
        "ko": "쉼표로 구분한 reference:scale 쌍이어야 합니다",
    },
    "input.lora_count": {"en": "at most {count} LoRAs", "ko": "LoRA는 최대 {count}개입니다"},
    "input.lora_safetensors": {
        "en": "only .safetensors LoRA files are loaded, got {file}",
        "ko": ".safetensors LoRA 파일만 불러옵니다. 받은 파일: {file}",
    },
    "input.lora_no_safetensors": {
        "en": "{repo} has no .safetensors file (only safetensors LoRA files are loaded)",
        "ko": "{repo}에 .safetensors 파일이 없습니다 (safetensors LoRA 파일만 불러옵니다)",
    },
    "input.lora_several_files": {
        "en": "{repo} has several .safetensors files; name one as {repo}/FILE: {files}",
        "ko": "{repo}에 .safetensors 파일이 여러 개 있습니다. "
        "{repo}/파일 형식으로 하나를 지정하세요: {files}",
    },
    "input.lora_missing_file": {"en": "{repo} has no file {file}", "ko": "{repo}에 {file} 파일이 없습니다"},
    "input.lora_too_large": {
        "en": "{file} is {size} MB; LoRA files may be at most {limit} MB",
        "ko": "{file}은(는) {size} MB입니다. LoRA 파일은 최대 {limit} MB입니다",
    },
    "input.lora_wrong_base": {
        "en": "{repo} is a LoRA for {base} (its model card's base_model), not for {model}",
        "ko": "{repo}은(는) {base}용 LoRA입니다 (모델 카드의 base_model). {model}에는 쓸 수 없습니다",
    },
    "input.lora_no_base": {
        "en": "{repo}'s model card names no base_model, so it cannot be checked against {model}",
        "ko": "{repo}의 모델 카드에 base_model이 없어 {model}에 맞는지 확인할 수 없습니다",
    },
    "input.lora_unreachable": {
        "en": "could not read {repo} from the Hub ({error})",
        "ko": "Hub에서 {repo}을(를) 읽을 수 없습니다 ({error})",
    },
    "input.lora_not_loadable": {
        "en": "{repo} could not be loaded into {model} ({error})",
        "ko": "{repo}을(를) {model}에 불러올 수 없습니다 ({error})",
    },
    "input.lora_with_aoti": {
        "en": "LoRAs cannot be applied to an ahead-of-time compiled transformer (FLUX_DEMO_COMPILE=aoti)",
        "ko": "미리 컴파일한 트랜스포머(FLUX_DEMO_COMPILE=aoti)에는 LoRA를 적용할 수 없습니다",
    },
    "input.not_uploaded": {
        "en": "must be an image uploaded to this app (e.g. handle_file(path)), not a path on the server",
        "ko": "이 앱에 올린 이미지여야 합니다 (예: handle_file(path)). 서버의 경로는 쓸 수 없습니다",
    },
    "input.references_files": {
        "en": "must be a list of image files (for example [handle_file(a), handle_file(b)], or "
        "data:image/... URLs), got an item of type {kind}",
        "ko": "이미지 파일의 목록이어야 합니다 (예: [handle_file(a), handle_file(b)] 또는 "
        "data:image/... URL). 받은 항목의 형식: {kind}",
    },
    "input.check_required": {
        "en": "is required: upload the image to check",
        "ko": "필수 항목입니다: 확인할 이미지를 올리세요",
    },
    "input.file_too_large": {
        "en": "must be a file of at most {megabytes} MB",
        "ko": "최대 {megabytes}MB의 파일이어야 합니다",
    },
    "input.run_first": {
        "en": "Run first: there is no result to use yet.",
        "ko": "먼저 실행하세요: 아직 쓸 결과가 없습니다.",
    },
    # --- notes: adjustments the server made ----------------------------------------------------
    "note.snapped": {
        "en": "{field} snapped from {value} to {snapped} (a multiple of {multiple})",
        "ko": "{field}: {value}에서 {snapped}(으)로 맞췄습니다 ({multiple}의 배수)",
    },
    "note.guidance_unused": {
        "en": "{note} The requested {value:g} was not used.",
        "ko": "{note} 요청한 값 {value:g}은(는) 쓰지 않았습니다.",
    },
    "note.edit_size": {
        "en": "size {width}×{height} from the {source}, snapped to multiples of {multiple}",
        "ko": "크기 {width}×{height}: {source}에서 정하고 {multiple}의 배수로 맞췄습니다",
    },
    "note.first_image": {"en": "first image ({width}×{height})", "ko": "첫 이미지({width}×{height})"},
    "note.first_image_aspect": {
        "en": "first image's aspect ({width}×{height})",
        "ko": "첫 이미지의 비율({width}×{height})",
    },
    "model.ignores_guidance": {
        "en": "{model} ignores guidance: it always runs at {value:g}.",
        "ko": "{model}은(는) 가이던스를 쓰지 않습니다: 항상 {value:g}(으)로 실행합니다.",
    },
    "model.guidance_range": {
        "en": "{model}: distilled guidance {low:g}–{high:g}, default {default:g}.",
        "ko": "{model}: 증류 가이던스 {low:g}–{high:g}, 기본값 {default:g}.",
    },
    "edit.diffusers_missing": {
        "en": "the installed diffusers has no {pipeline} (it needs diffusers 0.42.1 or newer)",
        "ko": "설치된 diffusers에 {pipeline}이(가) 없습니다 (diffusers 0.42.1 이상이 필요합니다)",
    },
    # --- links and PNGs ---------------------------------------------------------------------------
    "link.ignored": {"en": "Ignored {key}={value}: {reason}", "ko": "{key}={value} 무시됨: {reason}"},
    "link.bad_value": {"en": "not a valid value", "ko": "올바른 값이 아닙니다"},
    "ui.link_ignored": {
        "en": "Some link parameters were ignored:",
        "ko": "링크의 일부 매개변수를 무시했습니다:",
    },
    "ui.nano_prompt": {
        "en": "The offline nano models were trained on one kind of picture: a sign that says one of "
        "the words {words}. The prompt is that sign; a scene or another word is beyond them.",
        "ko": "오프라인 나노 모델은 한 가지 그림만 배웠습니다. {words} 중 한 단어가 적힌 간판입니다. "
        "프롬프트는 그 간판으로 만들었습니다. 장면이나 다른 단어는 그리지 못합니다.",
    },
    "ui.restored": {"en": "Restored {fields} from the PNG.", "ko": "PNG에서 {fields} 값을 불러왔습니다."},
    # --- faults: valid requests that could not be served -------------------------------------------
    "fault.generation_failed": {
        "en": "generation failed ({error}); see the server log",
        "ko": "생성에 실패했습니다 ({error}). 서버 로그를 확인하세요",
    },
    "fault.model_failed": {
        "en": "{model} failed ({error}); see the server log",
        "ko": "{model} 실패 ({error}). 서버 로그를 확인하세요",
    },
    "fault.replica_no_image": {
        "en": "the Ray replica ended without an image; see the server log",
        "ko": "Ray 복제본이 이미지 없이 끝났습니다. 서버 로그를 확인하세요",
    },
    "fault.out_of_memory": {
        "en": "out of GPU memory: try a smaller size or fewer steps",
        "ko": "GPU 메모리가 부족합니다: 크기나 스텝 수를 줄여 보세요",
    },
    "fault.cancelled": {
        "en": "generation stopped: the request was cancelled",
        "ko": "생성을 중지했습니다: 요청이 취소되었습니다",
    },
    "fault.model_unavailable": {
        "en": "model: {model} is unavailable right now: {reason}. The other models still work; "
        "try this one again later.",
        "ko": "model: {model}은(는) 지금 쓸 수 없습니다: {reason}. "
        "다른 모델은 그대로 쓸 수 있으니 이 모델은 나중에 다시 시도하세요.",
    },
    "fault.weights_gated": {
        "en": "its weights are gated: accept the licence on the Hub and set HF_TOKEN",
        "ko": "가중치 접근이 제한되어 있습니다: Hub에서 라이선스에 동의하고 HF_TOKEN을 설정하세요",
    },
    "fault.weights_missing": {"en": "its weights could not be found", "ko": "가중치를 찾을 수 없습니다"},
    "fault.weights_failed": {
        "en": "its weights failed to load ({error})",
        "ko": "가중치를 불러오지 못했습니다 ({error})",
    },
    "fault.gpu_quota": {"en": "GPU quota exceeded", "ko": "GPU 사용 한도를 넘었습니다"},
    "fault.gpu_queue_timeout": {
        "en": "no GPU became free in time; try again in a minute",
        "ko": "제때 빈 GPU가 없었습니다. 잠시 뒤 다시 시도하세요",
    },
    "fault.gpu_duration": {
        "en": "the request needs more GPU time than allowed: try fewer steps or a smaller size",
        "ko": "허용된 GPU 시간보다 오래 걸리는 요청입니다: 스텝 수나 크기를 줄여 보세요",
    },
    "fault.gpu_client": {
        "en": "no GPU is available right now; try again in a minute",
        "ko": "지금은 쓸 수 있는 GPU가 없습니다. 잠시 뒤 다시 시도하세요",
    },
    "fault.gpu_other": {"en": "GPU error: {title}", "ko": "GPU 오류: {title}"},
    # The GPU host's own explanation (English, from the `spaces` package) after ours.
    "fault.gpu_detail": {"en": "{summary}. {detail}", "ko": "{summary}. {detail}"},
    "fault.gpu_aborted": {
        "en": "the GPU task was stopped, usually for running past its time limit: "
        "try fewer steps or a smaller size",
        "ko": "GPU 작업이 중단되었습니다 (보통 시간 제한 초과): 스텝 수나 크기를 줄여 보세요",
    },
    "fault.gpu_task_failed": {
        "en": "the GPU task failed ({error})",
        "ko": "GPU 작업이 실패했습니다 ({error})",
    },
    "fault.content_filtered": {
        "en": "content filter: the image was withheld (score {score:.2f}, limit {limit:.2f}); "
        "try another prompt or seed",
        "ko": "콘텐츠 필터가 이미지를 보류했습니다 (점수 {score:.2f}, 기준 {limit:.2f}). "
        "다른 프롬프트나 시드를 시도하세요",
    },
    # --- rate limits ---------------------------------------------------------------------------------
    "limit.rate": {
        "en": "rate limit: at most {count} units of work per {period} per visitor (this request needs "
        "{cost}); try again in {seconds} s",
        "ko": "사용 한도: 방문자당 {period}마다 작업량 {count}단위까지입니다 (이 요청은 {cost}단위). "
        "{seconds}초 뒤에 다시 시도하세요",
    },
    "limit.too_costly": {
        "en": "rate limit: this request needs {cost} units of work, more than the {count} per {period} each "
        "visitor may use; ask for fewer images, steps or pixels",
        "ko": "사용 한도: 이 요청은 작업량 {cost}단위가 필요해 방문자당 {period}마다 허용되는 {count}단위를 "
        "넘습니다. 이미지 수, 스텝 수나 크기를 줄이세요",
    },
    "limit.busy": {
        "en": "busy: you already have {jobs} jobs waiting or running (at most {limit} per visitor); "
        "wait for one to finish",
        "ko": "대기 중이거나 실행 중인 작업이 이미 {jobs}개 있습니다 (방문자당 최대 {limit}개). "
        "하나가 끝난 뒤 다시 시도하세요",
    },
    "limit.uploads": {
        "en": "upload limit: at most {megabytes} MB of uploads per {minutes} minutes per visitor; try again "
        "later",
        "ko": "업로드 한도: 방문자당 {minutes}분마다 {megabytes}MB까지 올릴 수 있습니다. "
        "나중에 다시 시도하세요",
    },
    "period.second": {"en": "second", "ko": "1초"},
    "period.minute": {"en": "minute", "ko": "1분"},
    "period.hour": {"en": "hour", "ko": "1시간"},
    # --- progress ----------------------------------------------------------------------------------
    "progress.loading": {"en": "Loading {model} (first use)", "ko": "{model} 불러오는 중 (처음 한 번)"},
    "progress.denoising": {"en": "{model}: denoising step", "ko": "{model}: 디노이징 스텝"},
    "progress.model_step": {
        "en": "Model {index} of {count} ({model}): step {step} of {steps}",
        "ko": "모델 {count}개 중 {index}번째 ({model}): {steps}스텝 중 {step}스텝",
    },
    "progress.model": {
        "en": "Model {index} of {count}: {detail}",
        "ko": "모델 {count}개 중 {index}번째: {detail}",
    },
    "progress.suite": {"en": "Generating suite images", "ko": "스위트 이미지 생성 중"},
    "unit.steps": {"en": "steps", "ko": "스텝"},
    "unit.images": {"en": "images", "ko": "장"},
    # --- Stop --------------------------------------------------------------------------------------
    "ui.stopped_at": {
        "en": "Stopped at step {step} of {steps}. The last finished result is kept.",
        "ko": "{steps}단계 중 {step}단계에서 중지했습니다. 마지막으로 완성된 결과는 그대로 둡니다.",
    },
    "ui.stopped_images": {
        "en": "Stopped at image {done} of {total}. The images finished so far are scored below.",
        "ko": "{total}장 중 {done}장에서 중지했습니다. 지금까지 만든 이미지의 점수를 아래에 보여 줍니다.",
    },
    # --- results -----------------------------------------------------------------------------------
    "ui.summary": {
        "en": "{model} · {steps} steps · {width}×{height} · {seconds:.2f} s · seed {seed}",
        "ko": "{model} · {steps}스텝 · {width}×{height} · {seconds:.2f}초 · 시드 {seed}",
    },
    "ui.summary_device": {"en": " · {device} {dtype}", "ko": " · {device} {dtype}"},
    "ui.ok": {"en": "ok", "ko": "완료"},
    "ui.check_rows": {
        "en": "| Mark | Found |\n|---|---|\n| Invisible watermark | {watermark} |\n"
        "| Content Credentials (C2PA) | {c2pa} |\n"
        "| Digital source type (IPTC) | {source} |\n| Generation settings | {settings} |",
        "ko": "| 표시 | 결과 |\n|---|---|\n| 보이지 않는 워터마크 | {watermark} |\n"
        "| 콘텐츠 자격 증명 (C2PA) | {c2pa} |\n"
        "| 디지털 소스 유형 (IPTC) | {source} |\n| 생성 설정 | {settings} |",
    },
    "ui.check_own": {
        "en": "yes: this app's ({errors} of 48 bits off)",
        "ko": "예: 이 앱의 워터마크 (48비트 중 {errors}비트 틀림)",
    },
    "ui.check_bfl": {
        "en": "yes: Black Forest Labs' ({errors} of 46 bits off)",
        "ko": "예: Black Forest Labs의 워터마크 (46비트 중 {errors}비트 틀림)",
    },
    "ui.check_signed": {"en": "yes: signature {state}", "ko": "예: 서명 {state}"},
    "ui.yes": {"en": "yes", "ko": "예"},
    "ui.no": {"en": "no", "ko": "아니오"},
    "ui.unreadable_no": {
        "en": "no: OCR cannot read {chars}",
        "ko": "아니오: OCR이 {chars}을(를) 읽지 못합니다",
    },
    "ui.lora_trigger": {"en": "Trigger words", "ko": "트리거 단어"},
    "ui.lora_license": {"en": "Licence", "ko": "라이선스"},
    "ui.lora_source": {"en": "Source", "ko": "출처"},
    "ui.lora_hub_card": {
        "en": "Hub LoRA {id}: loaded on Run if its model card's base_model fits the chosen model.",
        "ko": "Hub LoRA {id}: 실행할 때, 모델 카드의 base_model이 고른 모델에 맞으면 불러옵니다.",
    },
    "ui.history_entry": {"en": "{model} · seed {seed}", "ko": "{model} · 시드 {seed}"},
    "ui.history_cleared": {"en": "History cleared.", "ko": "기록을 지웠습니다."},
    "ui.seed_caption": {"en": "seed {seed}", "ko": "시드 {seed}"},
    "ui.unreadable": {"en": "unreadable", "ko": "읽을 수 없음"},
    "ui.not_scored_summary": {
        "en": "**Not scored:** the OCR engines here cannot read this text (Korean and kana need "
        "Tesseract with its Korean and Japanese language data).",
        "ko": "**채점 안 됨:** 이 서버의 OCR 엔진은 이 글자를 읽지 못합니다 (한글과 가나는 한국어·일본어 "
        "데이터가 설치된 Tesseract가 필요합니다).",
    },
    "ui.score_summary": {
        "en": "**Mean CER {cer:.3f}** · exact match: {exact} · normalised match: {normalised} · "
        "OCR {seconds:.2f} s",
        "ko": "**평균 CER {cer:.3f}** · 정확히 일치: {exact} · 정규화 일치: {normalised} · "
        "OCR {seconds:.2f}초",
    },
}


class Message:
    """What to say, by catalog `code`, with its parameters; `str()` is the English text. Plain data, so it
    pickles into ZeroGPU's worker and Ray replicas along with the exceptions that carry it."""

    __slots__ = ("code", "params")

    def __init__(self, code: str, **params):
        if code not in CATALOG:
            raise KeyError(f"no message {code!r} in flux_demo.messages.CATALOG")
        self.code = code
        self.params = params

    def render(self, language: str = "en") -> str:
        """The text in `language` ("en" or "ko"; anything else: English)."""
        entries = CATALOG[self.code]
        template = entries.get(language) or entries["en"]
        return template.format(**{name: _param(name, value, language) for name, value in self.params.items()})

    def __str__(self) -> str:
        return self.render("en")

    def __repr__(self) -> str:
        params = "".join(f", {name}={value!r}" for name, value in self.params.items())
        return f"Message({self.code!r}{params})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Message) and (self.code, self.params) == (other.code, other.params)

    __hash__ = None  # type: ignore[assignment]  # equal messages are mutable-parameter values


def _param(name: str, value, language: str):
    if isinstance(value, Message):
        return value.render(language)
    if name == "model" and isinstance(value, str):  # a model's display name (flux_demo/models.py)
        return model_name(value, language)
    return value


def model_name(name: str, language: str) -> str:
    """A model's display name in `language`: the offline models' "(offline)" suffixes are translated."""
    if language == "ko":
        for english, korean in _NAME_SUFFIXES_KO.items():
            name = name.replace(english, korean)
    return name


def render(message, language: str = "en") -> str:
    """`message` (a `Message`, or text such as a model name) in `language`."""
    return message.render(language) if isinstance(message, Message) else str(message)


def placeholders(template: str) -> set[str]:
    """The parameter names a catalog template uses ("{seconds:.2f}" -> "seconds")."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}
