#include "loa-studio/audio_input.h"

#include <portaudio.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace loa::studio {

namespace {

void check(PaError err, const char* what) {
    if (err != paNoError) throw std::runtime_error(std::string(what) + ": " + Pa_GetErrorText(err));
}

int input_callback(const void* input, void* /*output*/, unsigned long frames,
                   const PaStreamCallbackTimeInfo* /*time_info*/, PaStreamCallbackFlags flags, void* user) {
    auto* self = static_cast<AudioInput*>(user);
    const bool underflow = (flags & paInputUnderflow) != 0;
    const bool overflow = (flags & paInputOverflow) != 0;
    if (input == nullptr) {
        self->capture({}, true, overflow);
    } else {
        self->capture(std::span<const float>(static_cast<const float*>(input), frames), underflow, overflow);
    }
    return paContinue;
}

bool is_input(const PaDeviceInfo* info) { return info != nullptr && info->maxInputChannels >= 1; }

}  // namespace

PortAudioInputs::PortAudioInputs() { check(Pa_Initialize(), "PortAudio initialisation"); }

PortAudioInputs::~PortAudioInputs() { Pa_Terminate(); }

std::string PortAudioInputs::list_input_devices() const {
    std::string out;
    const int count = Pa_GetDeviceCount();
    const PaDeviceIndex def = Pa_GetDefaultInputDevice();
    for (int i = 0; i < count; ++i) {
        const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
        if (!is_input(info)) continue;
        const PaHostApiInfo* api = Pa_GetHostApiInfo(info->hostApi);
        out += std::to_string(i) + ": " + info->name;
        if (api != nullptr) out += std::string(" (") + api->name + ")";
        if (i == def) out += " [default]";
        out += "\n";
    }
    if (out.empty()) out = "no audio input devices\n";
    return out;
}

int PortAudioInputs::find_input_device(const std::string& name_or_index) const {
    if (name_or_index.empty()) {
        const PaDeviceIndex def = Pa_GetDefaultInputDevice();
        if (def == paNoDevice) throw std::runtime_error("no default audio input device");
        return def;
    }
    const int count = Pa_GetDeviceCount();
    int index = -1;
    const char* first = name_or_index.data();
    const char* last = first + name_or_index.size();
    const auto [ptr, ec] = std::from_chars(first, last, index);
    if (ec == std::errc{} && ptr == last) {
        if (index < 0 || index >= count || !is_input(Pa_GetDeviceInfo(index))) {
            throw std::runtime_error("no audio input device with index " + name_or_index);
        }
        return index;
    }
    for (int i = 0; i < count; ++i) {
        const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
        if (is_input(info) && std::strstr(info->name, name_or_index.c_str()) != nullptr) return i;
    }
    throw std::runtime_error("no audio input device matching '" + name_or_index + "'");
}

AudioInput::AudioInput(int device, speaker::FloatRing& ring, unsigned long frames_per_buffer) : ring_(ring) {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(device);
    if (info == nullptr) throw std::runtime_error("invalid audio device index " + std::to_string(device));
    PaStreamParameters params{};
    params.device = device;
    params.channelCount = 1;
    params.sampleFormat = paFloat32;
    params.suggestedLatency = info->defaultLowInputLatency;
    params.hostApiSpecificStreamInfo = nullptr;
    PaStream* stream = nullptr;
    check(Pa_OpenStream(&stream, &params, nullptr, 48000.0, frames_per_buffer, paClipOff, &input_callback, this),
          "opening audio input");
    stream_ = stream;
}

AudioInput::~AudioInput() {
    stop();
    if (stream_ != nullptr) Pa_CloseStream(static_cast<PaStream*>(stream_));
}

void AudioInput::start() { check(Pa_StartStream(static_cast<PaStream*>(stream_)), "starting audio input"); }

void AudioInput::stop() noexcept {
    if (stream_ != nullptr && Pa_IsStreamActive(static_cast<PaStream*>(stream_)) == 1) {
        Pa_StopStream(static_cast<PaStream*>(stream_));
    }
}

void AudioInput::capture(std::span<const float> in, bool underflow, bool overflow) noexcept {
    if (underflow) underruns_.fetch_add(1, std::memory_order_relaxed);
    bool lost = overflow;
    if (!in.empty() && ring_.write(in) < in.size()) lost = true;
    if (lost) overruns_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace loa::studio
